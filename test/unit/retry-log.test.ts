// A stage's retry warnings during an outage: the first retry of a cause is logged, then at most one
// line per interval per cause, counting the retries not logged; another cause gets its own first line.
import { KeyflowError } from '../../src/errors';
import { RetryLog } from '../../src/consumers/retry-log';
import type { Logger } from '../../src/logger';

function recorder(): { log: Logger; lines: Array<{ fields: Record<string, unknown>; msg: string }> } {
  const lines: Array<{ fields: Record<string, unknown>; msg: string }> = [];
  const log = { warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) };
  return { log: log as unknown as Logger, lines };
}

const registryDown = (id: number) =>
  new KeyflowError('UNREACHABLE', `schema registry did not answer while trying to look up schema id ${id}`);

test('an outage retried by 1,000 events logs one line per interval per cause, with the unlogged count', () => {
  let now = 0;
  const { log, lines } = recorder();
  const retries = new RetryLog(log, { intervalMs: 10_000, now: () => now });
  for (let i = 0; i < 1000; i++) {
    now = i * 25; // 1,000 retries over 25 s
    retries.retrying(registryDown(i % 7), 1 + (i % 5), 200);
  }
  expect(lines.map((l) => [l.fields.unloggedRetries ?? 0, l.fields.attempt])).toEqual([
    [0, 1],
    [399, 1],
    [399, 1],
  ]);
  expect(lines[1]!.msg).toMatch(/399 more retries of this cause/);
  expect(lines[0]!.fields.err).toBeInstanceOf(KeyflowError);
});

test('another cause in the same window gets its own first line', () => {
  const { log, lines } = recorder();
  const retries = new RetryLog(log, { now: () => 5 });
  retries.retrying(registryDown(1), 1, 100);
  retries.retrying(new KeyflowError('STORE_TRANSIENT', 'mongo did not answer'), 1, 100);
  retries.retrying(registryDown(2), 2, 200);
  expect(lines.map((l) => (l.fields.err as KeyflowError).code)).toEqual(['UNREACHABLE', 'STORE_TRANSIENT']);
});
