// The @platformatic/kafka member's per-partition queues: batches in offset order per partition, a
// refetch is not queued twice, an uncommitted rest goes back to the front, a revoked partition's
// messages are forgotten, and partitions take turns.
import { PartitionQueues, type QueuedMessage } from '../../src/kafka/platformatic-queues';
import { failureBackoff, redeliverAt, YIELD_PAUSE_MS } from '../../src/kafka/platformatic-batch';
import { sendError, isFenced } from '../../src/kafka/platformatic-errors';

const msg = (offset: number): QueuedMessage => ({
  offset: BigInt(offset),
  key: null,
  value: Buffer.from('x'),
  headers: {},
  bytes: 10,
});
const all = () => true;

test('a partition is taken whole, in offset order, and a refetch below its next offset is dropped', () => {
  const q = new PartitionQueues();
  for (const o of [0, 1, 2]) q.push('t', 0, msg(o));
  expect(q.push('t', 0, msg(1))).toBe(false);
  const b = q.take(1_000, 0, all)!;
  expect(b.messages.map((m) => Number(m.offset))).toEqual([0, 1, 2]);
  expect(q.take(1_000, 0, all)).toBeUndefined(); // busy
  expect(q.bytes).toBe(0);
});

test('the uncommitted rest returns to the front, after its backoff', () => {
  const q = new PartitionQueues();
  for (const o of [0, 1, 2, 3]) q.push('t', 0, msg(o));
  const b = q.take(25, 0, all)!;
  expect(b.messages).toHaveLength(2); // byte bound
  q.release('t', 0, b.messages.slice(1), 500);
  expect(q.take(1_000, 100, all)).toBeUndefined();
  expect(q.nextReadyAt()).toBe(500);
  expect(q.take(1_000, 500, all)!.messages.map((m) => Number(m.offset))).toEqual([1, 2, 3]);
});

test('a revoked partition is forgotten; partitions take turns', () => {
  const q = new PartitionQueues();
  q.push('t', 0, msg(0));
  q.push('t', 1, msg(0));
  q.push('t', 2, msg(0));
  q.retain((_, p) => p !== 1);
  const first = q.take(1_000, 0, all)!;
  q.release(first.topic, first.partition);
  q.push('t', first.partition, msg(1));
  expect(q.take(1_000, 0, all)!.partition).not.toBe(first.partition);
  expect(q.queued('t', 1)).toBe(0);
});

test('failure backoff doubles from 200 ms up to 10 s', () => {
  expect([1, 2, 3, 10].map(failureBackoff)).toEqual([200, 400, 800, 10_000]);
});

test('broker refusals map to the codes the stage routes on; fencing is recognised', () => {
  const tooLarge = {
    code: 'PLT_KFK_MULTIPLE',
    message: 'failed',
    errors: [{ code: 'PLT_KFK_PROTOCOL', apiId: 'MESSAGE_TOO_LARGE', canRetry: false, message: 'too large' }],
  };
  expect(sendError(tooLarge, 1)).toMatchObject({ code: 'RECORD_TOO_LARGE', retriable: false });
  const unknown = {
    code: 'PLT_KFK_PROTOCOL',
    apiId: 'UNKNOWN_TOPIC_OR_PARTITION',
    canRetry: true,
    message: 'x',
  };
  expect(sendError(unknown, 1)).toMatchObject({ code: 'TOPIC_UNKNOWN', retriable: false });
  const network = { code: 'PLT_KFK_NETWORK', message: 'down', canRetry: true };
  expect(sendError(network, 1)).toMatchObject({ code: 'PRODUCE_FAILED', retriable: true });
  expect(isFenced({ code: 'PLT_KFK_RESPONSE', errors: [{ apiId: 'PRODUCER_FENCED' }] })).toBe(true);
  expect(isFenced(network)).toBe(false);
});

test('a released batch comes back after its backoff if it threw, after a pause if it was yielded, at once if done', () => {
  expect(redeliverAt(1000, 2, 5)).toBe(1000 + failureBackoff(2));
  expect(redeliverAt(1000, 0, 5)).toBe(1000 + YIELD_PAUSE_MS);
  expect(YIELD_PAUSE_MS).toBeGreaterThan(0);
  expect(redeliverAt(1000, 0, 0)).toBe(0);
});
