// Infrastructure retries inside a batch are bounded: a store or broker that stays down makes the call
// give up after the budget (the batch's rest is fetched again later), so a member never holds a
// rebalance up until the group drops it while its batch keeps writing.
import { retrying } from '../../src/consumers/retry';
import { classify } from '../../src/errors';
import { KeyflowError } from '../../src/errors';

function clock() {
  let t = 0;
  return { now: () => t, sleep: async (ms: number) => void (t += ms) };
}

const retry = { maxAttempts: 5, baseMs: 100, maxMs: 1_000 };
const down = () => Promise.reject(new KeyflowError('STORE_TRANSIENT', 'store unreachable'));

test('a call that keeps failing transiently gives up once the budget is spent, not before', async () => {
  const c = clock();
  let calls = 0;
  const result = retrying(() => (calls++, down()), {
    policy: retry,
    budgetMs: 5_000,
    keepGoing: () => true,
    giveUp: classify,
    sleep: c.sleep,
    now: c.now,
  });
  await expect(result).rejects.toMatchObject({ code: 'STORE_TRANSIENT' });
  // The last wait is cut to what is left of the budget, so it gives up at the budget exactly.
  expect(c.now()).toBe(5_000);
  expect(calls).toBeGreaterThan(5);
});

test('without a budget the same call is retried until it succeeds', async () => {
  const c = clock();
  let calls = 0;
  const value = await retrying(() => (++calls < 40 ? down() : Promise.resolve('ok')), {
    policy: retry,
    keepGoing: () => true,
    giveUp: classify,
    sleep: c.sleep,
    now: c.now,
  });
  expect(value).toBe('ok');
  expect(c.now()).toBeGreaterThan(5_000);
});

test('a recovery inside the budget returns the value; a non-retriable error is thrown at once', async () => {
  const c = clock();
  let calls = 0;
  await expect(
    retrying(() => (++calls < 3 ? down() : Promise.resolve(7)), {
      policy: retry,
      budgetMs: 5_000,
      keepGoing: () => true,
      giveUp: classify,
      sleep: c.sleep,
      now: c.now,
    }),
  ).resolves.toBe(7);
  await expect(
    retrying(() => Promise.reject(new KeyflowError('VALIDATION_FAILED', 'bad')), {
      policy: retry,
      budgetMs: 5_000,
      keepGoing: () => true,
      giveUp: classify,
      sleep: c.sleep,
      now: c.now,
    }),
  ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  expect(calls).toBe(3);
});
