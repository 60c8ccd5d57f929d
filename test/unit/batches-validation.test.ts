// Every API value passes a strict zod schema: operator-shaped keys and values, unknown statuses, bad ids
// and unknown fields are refused with a message naming the field, before anything touches MongoDB.
import { parseInput } from '../../src/api/server';
import { strategyFilter } from '../../src/batches/cleanup';
import { assetsQuery, batchParams, cleanupBody, createBatchBody } from '../../src/batches/schemas';

const refuse = (schema: Parameters<typeof parseInput>[0], value: unknown, where: string) => {
  try {
    parseInput(schema, value, where);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
};

test('?status[$ne]=x arrives as an unknown key and is refused by name', () => {
  expect(refuse(assetsQuery, { 'status[$ne]': 'x' }, 'query')).toMatch(
    /query: Unrecognized key: "status\[\$ne\]"/,
  );
});

test('a status that is not waiting, completed or error is refused', () => {
  expect(refuse(assetsQuery, { status: 'done' }, 'query')).toMatch(/query\.status/);
});

test('an operator object where an id belongs is refused', () => {
  const msg = refuse(createBatchBody, { assets: [{ id: { $gt: '' }, origin: 'file:///x.png' }] }, 'body');
  expect(msg).toMatch(/body\.assets\.0\.id/);
});

test('an operator key in the body is refused', () => {
  expect(refuse(createBatchBody, { assets: [], $where: '1' }, 'body')).toMatch(/\$where/);
});

test.each(['../x', 'a/b', 'a:b', '$gt', '', 'x'.repeat(201)])('asset id %p is refused', (id) => {
  expect(refuse(createBatchBody, { assets: [{ id, origin: 'file:///x.png' }] }, 'body')).toMatch(
    /assets\.0\.id/,
  );
});

test('origins must be file, http or https URLs', () => {
  expect(refuse(createBatchBody, { assets: [{ id: 'a', origin: 'ftp://h/x' }] }, 'body')).toMatch(/origin/);
});

test('duplicate asset ids in one batch are refused', () => {
  const asset = { id: 'a', origin: 'file:///x.png' };
  expect(refuse(createBatchBody, { assets: [asset, asset] }, 'body')).toMatch(/unique/);
});

test.each(['0', '-1', '1.5', 'abc', '1e3x', '99999999999999999999'])('batch id %p is refused', (batchId) => {
  expect(refuse(batchParams, { customerId: 'c1', batchId }, 'params')).toMatch(/params\.batchId/);
});

test('older-than cleanup needs days', () => {
  expect(refuse(cleanupBody, { strategy: 'older-than' }, 'body')).toMatch(/body\.days/);
  expect(refuse(cleanupBody, { strategy: 'everything' }, 'body')).toMatch(/body\.strategy/);
});

test('cleanup strategies select the rows the consumer asked for', () => {
  const now = Date.UTC(2024, 0, 10);
  expect(strategyFilter('completed', undefined, now)).toEqual({ status: 'completed' });
  expect(strategyFilter('superseded', undefined, now)).toEqual({ supersededBy: { $ne: null } });
  expect(strategyFilter('older-than', 3, now)).toEqual({ finished: { $lt: new Date(Date.UTC(2024, 0, 7)) } });
});
