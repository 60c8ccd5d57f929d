// A member that may have lost its partition must not write: the delivery stops being active at half
// the session timeout without a good heartbeat (before the coordinator can have handed the partition
// on), and a batch stage asks once more right before its write. Found by the fault suite's network
// cut, where an evicted member went on writing rows the new owner had counted too.
import type { EachBatchPayload } from 'kafkajs';
import { runBatch } from '../../src/consumers/batch';
import { toBatch } from '../../src/kafka/kafkajs-group';
import type { BatchActionHandler, StageEvent } from '../../src/topology/types';

function payload(beat: () => Promise<void>): EachBatchPayload {
  return {
    batch: { topic: 't', partition: 0, messages: [], offsetLag: () => '0', lastOffset: () => '-1' },
    heartbeat: beat,
    isRunning: () => true,
    isStale: () => false,
    resolveOffset: () => undefined,
    commitOffsetsIfNecessary: async () => undefined,
  } as unknown as EachBatchPayload;
}

test('a delivery stops being active at half the session timeout without a good heartbeat', async () => {
  let t = 1_000;
  let answering = true;
  const d = toBatch(
    payload(async () => {
      if (!answering) throw new Error('Request Heartbeat timed out');
    }),
    6_000,
    () => t,
  );
  t += 2_900;
  expect(d.active()).toBe(true);
  t += 200; // 3.1 s since the last good heartbeat: past half of 6 s
  expect(d.active()).toBe(false);
  await d.heartbeat();
  expect(d.active()).toBe(true);
  answering = false;
  await expect(d.heartbeat()).rejects.toThrow('timed out');
  t += 3_001;
  expect(d.active()).toBe(false);
});

const ev = (key: string, offset: number): StageEvent<number> => ({
  key,
  value: offset,
  eventId: `e${offset}`,
  occurredAt: undefined,
  tenantId: undefined,
  traceId: 'x',
  topic: 't',
  partition: 0,
  offset: String(offset),
  attempt: 1,
  headers: {},
  consumedAt: 0,
});

function counting(): { handler: BatchActionHandler<number, number, number>; written: number[] } {
  const written: number[] = [];
  return {
    written,
    handler: {
      read: async (events) => new Map(events.map((e) => [e.key, 0])),
      decide: (e, s) => ({ state: s + e.value, plan: e.value, emit: [] }),
      write: async (plans) => {
        written.push(...plans.map((p) => p.plan));
        return { failed: [] };
      },
    },
  };
}

const ctx = { stage: 's', db: {} as never, now: () => 0 };

test('a batch whose member may no longer own the partition holds every event unwritten', async () => {
  const { handler, written } = counting();
  const out = await runBatch(handler, [ev('a', 1), ev('b', 2)], ctx, () => false);
  expect(out.map((o) => o.kind)).toEqual(['held', 'held']);
  expect(written).toEqual([]);
});

test('a batch still owned writes as before', async () => {
  const { handler, written } = counting();
  const out = await runBatch(handler, [ev('a', 1), ev('b', 2)], ctx, () => true);
  expect(out.map((o) => o.kind)).toEqual(['done', 'done']);
  expect(written).toEqual([1, 2]);
});
