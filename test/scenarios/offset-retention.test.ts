// A committed offset that fell out of retention is reported, never skipped silently: with the
// processor stopped, records past its committed offset are deleted (DeleteRecords moves the log start
// exactly as retention does); the next processor resumes by the reset policy (earliest), and the
// skipped range is logged, counted in keyflow_offsets_skipped_total and kept in keyflow_skipped_ranges.
import type { Db } from 'mongodb';
import { skippedRanges } from '../../src/state/skipped-ranges';
import { adminClient, cleanupAll, eventually } from '../helpers';
import { COUNTERS, counterEvent, counterTopology, type CounterDoc } from './fixtures/counter';
import { dropAfter, prefix, runProcessor, testConfig, testProducer } from './harness';

afterAll(cleanupAll);

const count = async (db: Db) => (await db.collection<CounterDoc>(COUNTERS).findOne({ _id: 'a' }))?.count ?? 0;

test('offsets deleted below the committed position are reported as skipped, and the stage goes on', async () => {
  const p = prefix('retention');
  const topology = counterTopology(p, { partitions: 1 });
  const input = `${p}.in`;
  const stage = `${p}.counter`;
  const config = testConfig();
  const producer = await testProducer(config, topology);
  const send = (from: number, to: number) =>
    producer.publish(
      Array.from({ length: to - from }, (_, i) => {
        const e = counterEvent('a', from + i);
        return { topic: input, key: 'a', value: e, eventId: e.eventId };
      }),
    );

  const first = await runProcessor(config, topology);
  let db = first.context.db;
  dropAfter(() => db);
  await send(0, 10);
  await eventually(async () => ((await count(db)) === 10 ? true : undefined), 30_000, '10 applied');
  await first.stop();

  // Offsets 10-29 are published while no one consumes; 10-24 are then deleted, as retention would.
  await send(10, 30);
  const admin = await adminClient();
  // kafkajs's deleteTopicRecords needs the topic's metadata loaded; fetching its offsets loads it.
  expect((await admin.fetchTopicOffsets(input)).map((o) => o.high)).toEqual(['30']);
  await admin.deleteTopicRecords({ topic: input, partitions: [{ partition: 0, offset: '25' }] });
  const [{ offset: committed } = { offset: '' }] =
    (await admin.fetchOffsets({ groupId: stage, topics: [input] }))[0]?.partitions ?? [];
  expect(committed).toBe('10');

  const second = await runProcessor(config, topology);
  db = second.context.db;
  await eventually(async () => ((await count(db)) >= 15 ? true : undefined), 30_000, '15 applied');
  const ranges = await eventually(
    async () => {
      const r = await skippedRanges(db, stage);
      return r.length > 0 ? r : undefined;
    },
    10_000,
    'a skipped range recorded',
  );
  expect(ranges.map((r) => [r.topic, r.partition, r.from, r.to, r.logStart, r.count])).toEqual([
    [input, 0, '10', '25', '25', 15],
  ]);
  const metrics = await second.metrics.metrics();
  expect(metrics).toContain(
    `keyflow_offsets_skipped_total{stage="${stage}",topic="${input}",partition="0"} 15`,
  );
  // Only what was still in the log applied: 0-9 before, 25-29 after.
  const doc = await db.collection<CounterDoc>(COUNTERS).findOne({ _id: 'a' });
  expect(doc?.seqs).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 25, 26, 27, 28, 29]);
});
