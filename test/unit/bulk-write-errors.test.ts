// Which MongoBulkWriteErrors list operations that failed (the rest were written) and which say the
// whole bulk is unknown: the driver uses the one class for both.
import { MongoBulkWriteError, MongoNetworkError } from 'mongodb';
import { classify } from '../../src/errors';
import { writeErrorsOf } from '../../src/state/bulk';

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
