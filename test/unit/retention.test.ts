// Offsets that fell out of retention are reported, never skipped silently: the watch compares where a
// partition should continue (the committed offset after a join, then the previous delivery's end)
// with where a delivery starts, and calls it a skip only when the log start has passed that point.
import { RetentionWatch, skippedRange, type OffsetsPort } from '../../src/consumers/retention';
import { EVENTS } from '../../src/instrumentation';
import { createMetricsRegistry, registerStageMetrics } from '../../src/monitoring/metrics';
import { Instrumentation } from '../../src/instrumentation';
import type { SkippedRange } from '../../src/consumers/retention';
import type { BatchStageSpec } from '../../src/topology/types';
import { harness, message } from './fakes/runner';

class FakeOffsets implements OffsetsPort {
  committedAt = new Map<number, bigint>();
  low = new Map<number, bigint>();
  calls: string[] = [];
  async committed(groupId: string, topic: string) {
    this.calls.push(`committed ${groupId} ${topic}`);
    return new Map(this.committedAt);
  }
  async bounds(topic: string) {
    this.calls.push(`logStart ${topic}`);
    return new Map([...this.low].map(([p, low]) => [p, { low, high: low }]));
  }
}

test('a gap is a skip only when the log start has passed the expected offset', () => {
  expect(skippedRange(100n, 250n, 250n)).toEqual({ from: 100n, to: 250n });
  // Reset to latest: the first offset read is past the log start; everything up to it was skipped.
  expect(skippedRange(100n, 400n, 250n)).toEqual({ from: 100n, to: 400n });
  // Compaction or transaction markers: a gap above the log start loses nothing.
  expect(skippedRange(100n, 120n, 50n)).toBeUndefined();
  expect(skippedRange(100n, 100n, 250n)).toBeUndefined();
  expect(skippedRange(100n, 90n, 250n)).toBeUndefined();
});

test('the first delivery after a join is checked against the committed offset, later ones against the previous end', async () => {
  const port = new FakeOffsets();
  port.committedAt.set(0, 100n);
  port.low.set(0, 250n);
  const watch = new RetentionWatch({ stage: 'stage', groupId: 'stage', offsets: port, now: () => 7 });
  expect(await watch.check('t', 0, '250', '299')).toEqual({
    stage: 'stage',
    topic: 't',
    partition: 0,
    from: '100',
    to: '250',
    logStart: '250',
    count: 150,
    detectedAt: 7,
  });
  // Contiguous with the previous delivery: no broker call at all.
  port.calls = [];
  expect(await watch.check('t', 0, '300', '310')).toBeUndefined();
  expect(port.calls).toEqual([]);
  // Fell behind while running: retention passed the position the stage had reached.
  port.low.set(0, 400n);
  expect(await watch.check('t', 0, '400', '401')).toMatchObject({ from: '311', to: '400', count: 89 });
  // A redelivery after a failure starts earlier than expected: nothing skipped.
  expect(await watch.check('t', 0, '380', '402')).toBeUndefined();
});

test('a partition never committed, or one whose committed offset is still held, reports nothing', async () => {
  const port = new FakeOffsets();
  port.low.set(0, 250n);
  port.low.set(1, 0n);
  port.committedAt.set(1, 40n);
  const watch = new RetentionWatch({ stage: 'stage', groupId: 'stage', offsets: port });
  expect(await watch.check('t', 0, '250', '260')).toBeUndefined();
  expect(await watch.check('t', 1, '40', '60')).toBeUndefined();
  expect(port.calls).toEqual(['committed stage t', 'committed stage t']);
  // After a rejoin the committed offset is asked again: the partition may have had another owner.
  watch.reset();
  port.committedAt.set(1, 100n);
  port.low.set(1, 150n);
  expect(await watch.check('t', 1, '150', '160')).toMatchObject({ from: '100', to: '150', partition: 1 });
});

test('a scan finds every committed offset below its log start, and a range is reported once', async () => {
  const port = new FakeOffsets();
  port.committedAt.set(0, 100n).set(1, 300n).set(2, 7n);
  port.low.set(0, 250n).set(1, 250n).set(2, 9n).set(3, 50n);
  const watch = new RetentionWatch({ stage: 'stage', groupId: 'stage', offsets: port, now: () => 1 });
  const found = await watch.scan('t');
  expect(found.map((r) => [r.partition, r.from, r.to, r.count])).toEqual([
    [0, '100', '250', 150],
    [2, '7', '9', 2],
  ]);
  // The join's scan of its assigned partitions and the first delivery's check find the same range:
  // it was reported already.
  expect(await watch.scan('t', [0])).toEqual([]);
  expect(await watch.check('t', 0, '250', '260')).toBeUndefined();
  expect(
    await new RetentionWatch({ stage: 'stage', groupId: 'stage', offsets: port }).scan('t', [2]),
  ).toMatchObject([{ partition: 2 }]);
});

test('the skip counts in keyflow_offsets_skipped_total per stage, topic and partition', async () => {
  const instrumentation = new Instrumentation();
  const registry = createMetricsRegistry();
  registerStageMetrics(registry, instrumentation);
  const r = { stage: 's', topic: 't', partition: 3, from: '10', to: '25', count: 15 };
  instrumentation.emit(EVENTS.OFFSETS_SKIPPED, r);
  instrumentation.emit(EVENTS.OFFSETS_SKIPPED, { ...r, from: '30', to: '32', count: 2 });
  const text = await registry.metrics();
  expect(text).toContain('keyflow_offsets_skipped_total{stage="s",topic="t",partition="3"} 17');
});

/** A stage that applies every event: only the runner's handling of the skip is under test. */
const stage: BatchStageSpec<{ id: string }, { n: number }, string> = {
  kind: 'batch',
  name: 'skipping',
  inputs: ['in'],
  outputs: [],
  handler: {
    read: async (events) => new Map(events.map((e) => [e.key, { n: 0 }])),
    decide: (e, s) => ({ plan: e.key, emit: [], state: { n: s.n + 1 } }),
    write: async () => ({ failed: [] }),
  },
};

test('the runner reports a skipped range found at a delivery once, durably and as an event, and goes on', async () => {
  const port = new FakeOffsets();
  port.committedAt.set(0, 5n);
  port.low.set(0, 5n);
  const recorded: SkippedRange[] = [];
  const h = await harness(
    stage,
    undefined,
    {},
    {},
    {
      offsets: port,
      recordSkipped: async (r) => void recorded.push(r),
    },
  );
  expect(recorded).toEqual([]);
  const events: unknown[] = [];
  h.instrumentation.on(EVENTS.OFFSETS_SKIPPED, (e) => events.push(e));
  port.low.set(0, 20n);
  await h.deliver([message(20, 'a', { id: 'a' }), message(21, 'b', { id: 'b' })]);
  await h.deliver([message(22, 'a', { id: 'a' })]);
  expect(recorded.map((r) => [r.stage, r.topic, r.partition, r.from, r.to, r.count])).toEqual([
    ['skipping', 'in', 0, '5', '20', 15],
  ]);
  expect(events).toEqual([{ stage: 'skipping', topic: 'in', partition: 0, from: '5', to: '20', count: 15 }]);
  expect(h.commits[h.commits.length - 1]).toBe('23');
});

test('the runner scans before it joins: a committed offset already below the log start is reported at start', async () => {
  const port = new FakeOffsets();
  port.committedAt.set(0, 5n);
  port.low.set(0, 20n);
  const recorded: SkippedRange[] = [];
  const h = await harness(
    stage,
    undefined,
    {},
    {},
    {
      offsets: port,
      recordSkipped: async (r) => void recorded.push(r),
    },
  );
  expect(recorded.map((r) => [r.partition, r.from, r.to])).toEqual([[0, '5', '20']]);
  // The client then resets the committed offset (kafkajs commits its default over it).
  port.committedAt.clear();
  await h.deliver([message(20, 'a', { id: 'a' })]);
  expect(recorded.length).toBe(1);
  expect(h.commits[h.commits.length - 1]).toBe('21');
});

test('a check the broker cannot answer is logged and the delivery still applies', async () => {
  const port = new FakeOffsets();
  port.committed = async () => {
    throw new Error('broker gone');
  };
  const recorded: SkippedRange[] = [];
  const h = await harness(
    stage,
    undefined,
    {},
    {},
    {
      offsets: port,
      recordSkipped: async (r) => void recorded.push(r),
    },
  );
  await h.deliver([message(20, 'a', { id: 'a' })]);
  expect(recorded).toEqual([]);
  expect(h.commits[h.commits.length - 1]).toBe('21');
});
