// The store ceiling is the store's best rate at the pipeline's own concurrency or above: it tries
// shapes with at least as many bulk calls in flight as the pipeline consumes partitions at once, keeps
// that many outstanding, and sends every write exactly once.
import { bulkCalls, ceilingShapes, sendBulkCalls } from '../../src/bench/baselines';
import { RUNNER_DEFAULTS } from '../../src/consumers/options';

test("every shape has at least as many calls in flight as the pipeline's partitions at once", () => {
  const p = RUNNER_DEFAULTS.partitionsAtOnce;
  const shapes = ceilingShapes(p);
  expect(shapes.length).toBeGreaterThan(1);
  for (const s of shapes) expect(s.inFlight).toBeGreaterThanOrEqual(p);
  expect(shapes.some((s) => s.inFlight === p)).toBe(true);
  expect(new Set(shapes.map((s) => `${s.inFlight}x${s.perCall}`)).size).toBe(shapes.length);
});

test('bulk calls take the collections in turn and carry every write once, none over the size', () => {
  const ops = new Map([
    ['a', [1, 2, 3, 4, 5]],
    ['b', [6, 7]],
    ['c', [8, 9, 10]],
  ]);
  const calls = bulkCalls(ops, 2);
  expect(calls).toEqual([
    ['a', [1, 2]],
    ['b', [6, 7]],
    ['c', [8, 9]],
    ['a', [3, 4]],
    ['c', [10]],
    ['a', [5]],
  ]);
});

test('sendBulkCalls keeps exactly inFlight calls outstanding while enough remain', async () => {
  const inFlight = RUNNER_DEFAULTS.partitionsAtOnce;
  const calls = Array.from({ length: inFlight * 3 }, (_, i) => i);
  let outstanding = 0;
  let most = 0;
  const waiting: (() => void)[] = [];
  const sent: number[] = [];
  const run = sendBulkCalls(
    calls,
    inFlight,
    async (call) => {
      outstanding++;
      most = Math.max(most, outstanding);
      sent.push(call);
      await new Promise<void>((resolve) => waiting.push(resolve));
      outstanding--;
    },
    () => true,
  );
  // Release one call at a time once all inFlight are out: the next starts only when one ends.
  while (sent.length < calls.length || waiting.length > 0) {
    await new Promise((r) => setImmediate(r));
    if (sent.length < calls.length) expect(outstanding).toBe(inFlight);
    waiting.shift()?.();
  }
  await expect(run).resolves.toBe(calls.length);
  expect(most).toBe(inFlight);
  expect(sent).toEqual(calls);
});

test('sendBulkCalls stops starting calls once told there is no more time', async () => {
  let started = 0;
  const done = await sendBulkCalls(
    Array.from({ length: 10 }, (_, i) => i),
    2,
    async () => void started++,
    () => started < 3,
  );
  expect(started).toBe(done);
  expect(done).toBeLessThan(10);
});
