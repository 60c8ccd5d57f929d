// The error table of docs/operating.md is the documentation of ERROR_CODES: same codes, same retriable flags.
import fs from 'node:fs';
import path from 'node:path';
import { classify, ERROR_CODES, KeyflowError } from '../../src/errors';

const operating = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'operating.md'), 'utf8');

test("every error code appears in the operating guide's table with its retriable flag, and nothing else does", () => {
  const start = operating.indexOf('\n## Error codes\n');
  expect(start).toBeGreaterThan(0);
  const end = operating.indexOf('\n## ', start + 1);
  const section = operating.slice(start, end < 0 ? undefined : end);
  const rows = [...section.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(yes|no)\s*\|/gm)].map((m) => [
    m[1],
    m[2] === 'yes',
  ]);
  const expected = Object.entries(ERROR_CODES).map(([code, e]) => [code, e.retriable]);
  expect(rows.sort()).toEqual(expected.sort());
});

test('a KeyflowError takes its retriable flag from the table unless told otherwise', () => {
  expect(new KeyflowError('LEASE_BUSY', 'x').retriable).toBe(true);
  expect(new KeyflowError('DECODE_FAILED', 'x').retriable).toBe(false);
  expect(new KeyflowError('DOMAIN_SPECIFIC', 'x', { retriable: true }).retriable).toBe(true);
  const cause = new Error('root');
  expect(new KeyflowError('UNREACHABLE', 'x', { cause }).cause).toBe(cause);
});

test('a bulk write the driver could not carry out (server unreachable) is STORE_TRANSIENT, a real write error is not', () => {
  const unreachable = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:27017'), {
    name: 'MongoBulkWriteError',
    writeErrors: [],
  });
  expect(classify(unreachable)).toMatchObject({ code: 'STORE_TRANSIENT', retriable: true });
  const duplicate = Object.assign(new Error('E11000 duplicate key'), {
    name: 'MongoBulkWriteError',
    code: 11000,
    writeErrors: [{ code: 11000 }],
  });
  expect(classify(duplicate)).toMatchObject({ code: 'HANDLER_FAILED', retriable: false });
});

test('a cleared connection pool or a full wait queue is STORE_TRANSIENT, not a handler failure', () => {
  // What the driver throws at operations queued on a pool that a failed monitor check just cleared:
  // the fault suite found these dead-lettered as HANDLER_FAILED on a loaded machine.
  const pool = { address: '127.0.0.1:27017', serverError: new Error('connection <monitor> timed out') };
  for (const name of ['PoolClearedError', 'PoolClearedOnNetworkError', 'WaitQueueTimeoutError']) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Cls = (require('mongodb/lib/cmap/errors') as Record<string, new (...a: unknown[]) => Error>)[name]!;
    const err = name === 'WaitQueueTimeoutError' ? new Cls('timed out waiting', pool.address) : new Cls(pool);
    const k = classify(err);
    expect({ name, code: k.code, retriable: k.retriable }).toEqual({
      name,
      code: 'STORE_TRANSIENT',
      retriable: true,
    });
  }
});
