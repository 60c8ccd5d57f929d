// BatchAssets semantics: the last state per key wins whatever the delivery order or count, and a batch's
// counts are derived from its rows' tallies, with `finished` only once no row is waiting.
import { deriveCounts, foldStatus, type RowState } from '../../src/batches/reducers';
import type { BatchStatus } from '../../src/batches/schemas';

const waiting: RowState = { status: 'waiting', error: null, finished: null };
const rec = (
  status: BatchStatus['status'],
  finished: number | null,
  error: string | null = null,
): BatchStatus => ({
  batchId: 1,
  customerId: 'c',
  assetId: 'a',
  status,
  error,
  finished,
});

function foldAll(records: BatchStatus[]): RowState {
  return records.reduce((row, r) => foldStatus(row, r) ?? row, waiting);
}

test('a finished record moves a waiting row; the same record again changes nothing', () => {
  const next = foldStatus(waiting, rec('completed', 10));
  expect(next).toEqual({ status: 'completed', error: null, finished: 10 });
  expect(foldStatus(next!, rec('completed', 10))).toBeNull();
});

test('waiting never undoes a finished row', () => {
  expect(foldStatus({ status: 'error', error: 'x', finished: 5 }, rec('waiting', null))).toBeNull();
});

test('the later finished state wins, in any arrival order and with duplicates', () => {
  const records = [
    rec('error', 10, 'boom'),
    rec('completed', 20),
    rec('error', 10, 'boom'),
    rec('completed', 20),
  ];
  const want = { status: 'completed', error: null, finished: 20 };
  expect(foldAll(records)).toEqual(want);
  expect(foldAll([...records].reverse())).toEqual(want);
  expect(foldAll([records[1]!, records[0]!, records[1]!])).toEqual(want);
});

test('two different outcomes at the same instant settle the same way in either order', () => {
  const a = rec('error', 7, 'boom');
  const b = rec('completed', 7);
  expect(foldAll([a, b])).toEqual(foldAll([b, a]));
});

test('an error without text still records that it failed', () => {
  expect(foldStatus(waiting, rec('error', 3, null))?.error).toBe('unknown error');
});

test('counts come from the tallies; finished is the last finish once nothing waits', () => {
  expect(
    deriveCounts([
      { status: 'completed', rows: 7, superseded: 1, lastFinished: 50 },
      { status: 'error', rows: 3, superseded: 2, lastFinished: 70 },
    ]),
  ).toEqual({ count: 10, completed: 7, errors: 3, superseded: 3, finished: 70 });
  expect(
    deriveCounts([
      { status: 'completed', rows: 7, superseded: 0, lastFinished: 50 },
      { status: 'waiting', rows: 1, superseded: 0, lastFinished: null },
    ]),
  ).toEqual({ count: 8, completed: 7, errors: 0, superseded: 0, finished: null });
  expect(deriveCounts([])).toEqual({ count: 0, completed: 0, errors: 0, superseded: 0, finished: null });
});
