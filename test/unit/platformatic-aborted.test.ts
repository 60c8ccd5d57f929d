// Read-committed filtering of a fetch answer: every aborted transaction's records go, whatever else
// the same producer wrote, and an abort whose marker is past the answer still hides its records.
import { dropAborted, type FetchedBatch } from '../../src/kafka/platformatic-aborted';

const TX = 1 << 4;
const CONTROL = 1 << 5;

function data(offset: number, producer: number, transactional = true): FetchedBatch {
  return {
    firstOffset: BigInt(offset),
    lastOffsetDelta: 0,
    producerId: BigInt(producer),
    attributes: transactional ? TX : 0,
    records: [{ key: Buffer.from(`d${offset}`) }],
  };
}

function marker(offset: number, producer: number, commit: boolean): FetchedBatch {
  const key = Buffer.alloc(4);
  key.writeInt16BE(commit ? 1 : 0, 2);
  return {
    firstOffset: BigInt(offset),
    lastOffsetDelta: 0,
    producerId: BigInt(producer),
    attributes: TX | CONTROL,
    records: [{ key }],
  };
}

const offsets = (batches: FetchedBatch[] | null | undefined) =>
  (batches ?? []).map((b) => Number(b.firstOffset));

test('two aborted transactions of one producer, a committed one between them, another producer alongside', () => {
  const p = {
    records: [
      data(0, 7), // aborted
      data(1, 9, false), // not transactional
      marker(2, 7, false),
      data(3, 7), // committed
      marker(4, 7, true),
      data(5, 7), // aborted
      data(6, 8), // another producer, committed
      marker(7, 7, false),
      marker(8, 8, true),
    ],
    abortedTransactions: [
      { producerId: 7n, firstOffset: 5n },
      { producerId: 7n, firstOffset: 0n },
    ],
  };
  dropAborted(p);
  expect(offsets(p.records)).toEqual([1, 2, 3, 4, 6, 7, 8]);
  expect(p.abortedTransactions).toEqual([]);
});

test('an aborted transaction whose marker is past this answer is hidden all the same', () => {
  const p = {
    records: [data(0, 3, false), data(1, 5), data(2, 5)],
    abortedTransactions: [{ producerId: 5n, firstOffset: 1n }],
  };
  dropAborted(p);
  expect(offsets(p.records)).toEqual([0]);
});

test('an answer without aborted transactions is left as it is', () => {
  const records = [data(0, 5), marker(1, 5, true)];
  const p = { records, abortedTransactions: null };
  dropAborted(p);
  expect(p.records).toBe(records);
});
