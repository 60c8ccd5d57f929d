// Which MongoBulkWriteErrors list operations that failed (the rest were written) and which say the
// whole bulk is unknown: the driver uses the one class for both.
import { MongoBulkWriteError, MongoNetworkError, type AnyBulkWriteOperation, type Collection } from 'mongodb';
import { classify, type KeyflowError } from '../../src/errors';
import { writeErrorsOf, writeGuarded, writeTagged } from '../../src/state/bulk';

const noWrites = {
  getWriteConcernError: () => undefined,
};

test('write errors the server reported are the failed operations', () => {
  const err = new MongoBulkWriteError(
    { message: 'E11000 duplicate key', code: 11000, writeErrors: [{ index: 2, code: 11000 }] as never },
    noWrites as never,
  );
  expect(writeErrorsOf(err)).toEqual([{ index: 2, code: 11000 }]);
});

test('a network error wrapped by the driver lists no write errors: nothing is known written', () => {
  const err = new MongoBulkWriteError(new MongoNetworkError('read ECONNRESET'), noWrites as never);
  expect(err.writeErrors).toEqual([]);
  expect(writeErrorsOf(err)).toBeUndefined();
  expect(classify(err).code).toBe('STORE_TRANSIENT');
});

test('a write-concern error beside write errors leaves every operation unknown', () => {
  const err = new MongoBulkWriteError(
    { message: 'E11000 duplicate key', code: 11000, writeErrors: [{ index: 0, code: 11000 }] as never },
    { getWriteConcernError: () => ({ code: 64, errmsg: 'waiting for replication timed out' }) } as never,
  );
  expect(writeErrorsOf(err)).toBeUndefined();
});

test('other errors are not bulk write failures', () => {
  expect(writeErrorsOf(new MongoNetworkError('closed'))).toBeUndefined();
  expect(writeErrorsOf(undefined)).toBeUndefined();
});

// What a failed operation of a bulk write becomes: the driver keeps a WriteError's code behind a getter,
// so the code must be read from it, not copied off it. Before, every operation's error was
// HANDLER_FAILED: a duplicate key met in a rebalance overlap dead-lettered the event (and parked its
// key) instead of reading it again, and a transient write conflict was never retried.

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { WriteError } = require('mongodb/lib/bulk/common') as {
  WriteError: new (e: { index: number; code: number; errmsg: string }) => { code: number; index: number };
};

function failingWith(...errors: { index: number; code: number; errmsg: string }[]) {
  const err = new MongoBulkWriteError(
    {
      message: errors[0]!.errmsg,
      code: errors[0]!.code,
      writeErrors: errors.map((e) => new WriteError(e)) as never,
    },
    noWrites as never,
  );
  return {
    collectionName: 'archive',
    bulkWrite: async () => {
      throw err;
    },
  } as unknown as Collection<{ _id: string }>;
}

const insert = (_id: string): AnyBulkWriteOperation<{ _id: string }> => ({
  insertOne: { document: { _id } },
});

test('a duplicate key on an insert is retriable (the event is read again), keeping the server code', async () => {
  const coll = failingWith({ index: 1, code: 11000, errmsg: 'E11000 duplicate key error' });
  const [failure, ...rest] = await writeTagged(coll, [
    { index: 4, op: insert('a') },
    { index: 7, op: insert('b') },
  ]);
  expect(rest).toEqual([]);
  expect(failure!.index).toBe(7);
  expect(failure!.error).toMatchObject({ code: 'HANDLER_TRANSIENT', retriable: true });
  expect(((failure!.error as KeyflowError).cause as { code: number }).code).toBe(11000);
});

test('an insert whose duplicate means done is no failure', async () => {
  const coll = failingWith({ index: 0, code: 11000, errmsg: 'E11000 duplicate key error' });
  expect(await writeTagged(coll, [{ index: 0, op: insert('a'), duplicateIsDone: true }])).toEqual([]);
});

test('a transient server code on one operation retries; another code is a handler failure that keeps it', async () => {
  const coll = failingWith(
    { index: 0, code: 112, errmsg: 'WriteConflict' },
    { index: 1, code: 121, errmsg: 'Document failed validation' },
  );
  const failures = await writeTagged(coll, [
    { index: 0, op: insert('a') },
    { index: 1, op: insert('b') },
  ]);
  expect(
    failures.map((f) => [f.index, (f.error as KeyflowError).code, (f.error as KeyflowError).retriable]),
  ).toEqual([
    [0, 'STORE_TRANSIENT', true],
    [1, 'HANDLER_FAILED', false],
  ]);
  expect(((failures[1]!.error as KeyflowError).cause as { code: number }).code).toBe(121);
  expect(classify(failures[1]!.error).message).toContain('Document failed validation');
});

test('a guarded write keeps the code too: a write conflict retries, a duplicate insert is a concurrent update', async () => {
  const conflict = failingWith({ index: 0, code: 112, errmsg: 'WriteConflict' });
  const [a] = await writeGuarded(conflict, [{ index: 3, _id: 'r1', insert: { _id: 'r1' } }], 'row');
  expect(a).toMatchObject({ index: 3, error: { code: 'STORE_TRANSIENT', retriable: true } });
  const duplicate = failingWith({ index: 0, code: 11000, errmsg: 'E11000 duplicate key error' });
  const [b] = await writeGuarded(duplicate, [{ index: 3, _id: 'r1', insert: { _id: 'r1' } }], 'row');
  expect(b).toMatchObject({ index: 3, error: { code: 'HANDLER_TRANSIENT', retriable: true } });
});
