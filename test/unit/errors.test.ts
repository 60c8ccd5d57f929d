// The README's error table is the documentation of ERROR_CODES: same codes, same retriable flags.
import fs from 'node:fs';
import path from 'node:path';
import { classify, ERROR_CODES, KeyflowError } from '../../src/errors';
import { MongoNetworkTimeoutError } from 'mongodb';

const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');

test('every error code appears in the README table with its retriable flag, and nothing else does', () => {
  const section = readme.slice(
    readme.indexOf('## Errors'),
    readme.indexOf('\n## ', readme.indexOf('## Errors') + 1),
  );
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

test('a connection the driver dropped under load (pool cleared, monitor timed out) is STORE_TRANSIENT, not a handler failure', () => {
  // The driver's own classes (not exported from its index): the network fault suite found these
  // dead-lettered as HANDLER_FAILED while MongoDB was slow to answer.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const cmap = require('mongodb/lib/cmap/errors') as {
    PoolClearedOnNetworkError: new (pool: { address: string }) => Error;
    PoolClearedError: new (pool: { address: string }) => Error;
  };
  const pool = { address: '127.0.0.1:27227' };
  const monitorTimeout = new cmap.PoolClearedOnNetworkError(pool);
  expect(monitorTimeout.message).toBe(
    'Connection to 127.0.0.1:27227 interrupted due to server monitor timeout',
  );
  expect(classify(monitorTimeout)).toMatchObject({ code: 'STORE_TRANSIENT', retriable: true });
  expect(classify(new cmap.PoolClearedError(pool))).toMatchObject({
    code: 'STORE_TRANSIENT',
    retriable: true,
  });
  expect(classify(new MongoNetworkTimeoutError('connection 3 to 127.0.0.1:27227 timed out'))).toMatchObject({
    code: 'STORE_TRANSIENT',
  });
});
