// Ingest holds a bounded number of fetched bytes across all stages and lanes: a delivery that would
// exceed the budget waits until earlier ones finish, in arrival order; one larger than the whole
// budget still goes through alone, so nothing can wait for ever.
import { ByteBudget } from '../../src/consumers/byte-budget';
import type { ActionStageSpec } from '../../src/topology/types';
import { harness, message } from './fakes/runner';

test('takes wait for room in arrival order, and a release serves the next', async () => {
  const budget = new ByteBudget(100);
  const order: string[] = [];
  const a = await budget.take(60);
  const b = budget.take(50).then((r) => (order.push('b'), r));
  const c = budget.take(10).then((r) => (order.push('c'), r)); // fits, but must not overtake b
  await Promise.resolve();
  expect(order).toEqual([]);
  a();
  const releaseB = await b;
  const releaseC = await c;
  expect(order).toEqual(['b', 'c']);
  expect(budget.inUse).toBe(60);
  releaseB();
  releaseC();
  releaseC(); // twice is harmless
  expect(budget.inUse).toBe(0);
  // Larger than the budget: let through alone.
  const big = await budget.take(1_000);
  expect(budget.inUse).toBe(100);
  big();
});

test('a second delivery waits while the first holds the budget, across stages sharing it', async () => {
  const budget = new ByteBudget(2_000);
  const started: string[] = [];
  let finishFirst!: () => void;
  const gate = new Promise<void>((r) => (finishFirst = r));
  const spec = (name: string): ActionStageSpec<{ id: string }, null, { id: string }> => ({
    kind: 'action',
    name,
    inputs: [`${name}.in`],
    outputs: [],
    handler: {
      read: async () => null,
      decide: (e) => ({ plan: e.value, emit: [] }),
      async write(_p, e) {
        started.push(`${name}:${e.key}`);
        if (name === 'one') await gate;
        return 'applied';
      },
    },
  });
  const one = await harness(spec('one'), undefined, {}, {}, { ingest: budget });
  const two = await harness(spec('two'), undefined, {}, {}, { ingest: budget });
  const big = (key: string) => message(0, key, { id: key, pad: 'x'.repeat(1_500) });
  const first = one.deliver([big('a')]);
  while (!started.includes('one:a')) await new Promise((r) => setImmediate(r));
  const second = two.deliver([big('b')]);
  await new Promise((r) => setImmediate(r));
  expect(started).toEqual(['one:a']); // two's delivery waits for room
  finishFirst();
  await first;
  await second;
  expect(started).toEqual(['one:a', 'two:b']);
  expect(budget.inUse).toBe(0);
});
