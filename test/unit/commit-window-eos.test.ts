// Exactly-once flushes of the commit window: a flush is one transaction holding only the completed
// prefix's records and its offset, so a record is visible exactly when its offset is committed; an
// aborted transaction commits nothing, a fenced one loses the partition, and a refused record is
// dead-lettered without anything else of its transaction becoming visible.
import { CommitWindow, type Settled } from '../../src/consumers/commit-window';
import type { InFlight } from '../../src/consumers/envelope';
import { KeyflowError } from '../../src/errors';
import type { WireRecord } from '../../src/producers/types';
import { harness, message } from './fakes/runner';

const rec = (topic: string, tag: string): WireRecord => ({
  topic,
  key: tag,
  value: Buffer.from(tag),
  headers: {},
  eventId: tag,
});

/** A window over `offsets` whose transactions are recorded as they commit (visible ones only). */
function window(
  offsets: string[],
  transact: (records: WireRecord[], next: string) => Promise<void>,
  end?: string,
) {
  const committed: string[] = [];
  const lost: unknown[] = [];
  const w = new CommitWindow(
    offsets,
    {
      send: () => Promise.reject(new Error('exactly-once never sends outside a transaction')),
      commit: () => Promise.reject(new Error('exactly-once never commits outside a transaction')),
      transact,
      end,
      committed: (last) => committed.push(last),
      lost: (err) => lost.push(err),
      refused: async (item) => [rec('stage.dlq', `letter-${item.raw.offset}`)],
    },
    { maxRecords: 1000, intervalMs: 60_000 },
  );
  return { w, committed, lost };
}

const event = (offset: string, ...tags: string[]): Settled => ({
  offset,
  records: tags.map((t) => rec('out', t)),
  item: { raw: { offset } } as InFlight,
});

test('a flush sends only the completed prefix: records settled past an unfinished offset wait', async () => {
  const txs: { records: string[]; next: string }[] = [];
  const { w, committed } = window(['0', '1', '2'], async (records, next) => {
    txs.push({ records: records.map((r) => r.eventId), next });
  });
  await w.settle(event('0', 'a0'));
  await w.settle(event('2', 'c2'));
  await w.flush();
  expect(txs).toEqual([{ records: ['a0'], next: '1' }]);

  // A dead-lettered event settles its letter's records; they go in the same transaction as its offset.
  await w.settle({ offset: '1', records: [rec('stage.dlq', 'dlq1')] });
  await w.flush();
  expect(txs).toEqual([
    { records: ['a0'], next: '1' },
    { records: ['c2', 'dlq1'], next: '3' }, // in settling order, which keeps each key's order
  ]);
  expect(committed).toEqual(['0', '2']);
  await w.flush();
  expect(txs).toHaveLength(2);
});

test('once every offset is done the batch end is committed, past its trailing control records', async () => {
  const nexts: string[] = [];
  const { w } = window(['4', '5'], async (_r, next) => void nexts.push(next), '9');
  await w.settle(event('4', 'x'));
  await w.flush();
  await w.settle(event('5', 'y'));
  await w.flush();
  expect(nexts).toEqual(['5', '9']);
});

test('an aborted transaction commits nothing and its flush fails, so the delivery is fetched again', async () => {
  const { w, committed, lost } = window(['0', '1'], async () => {
    throw new KeyflowError('PRODUCE_FAILED', 'transaction aborted: broker gone');
  });
  await w.settle(event('0', 'a'));
  await w.settle(event('1', 'b'));
  await expect(w.flush()).rejects.toMatchObject({ code: 'PRODUCE_FAILED' });
  expect(committed).toEqual([]);
  expect(lost).toEqual([]);
});

test('a fenced transaction loses the partition: nothing is committed and no further flush is tried', async () => {
  let calls = 0;
  const { w, committed, lost } = window(['0', '1'], async () => {
    calls++;
    throw new KeyflowError('PARTITION_FENCED', 'a newer owner');
  });
  await w.settle(event('0', 'a'));
  await w.flush();
  expect(w.lost).toBe(true);
  expect(lost).toHaveLength(1);
  await w.settle(event('1', 'b'));
  await w.flush();
  expect(calls).toBe(1);
  expect(committed).toEqual([]);
});

test('a record the broker refuses is dead-lettered; the rest commit offset by offset, nothing refused shows', async () => {
  const visible: string[] = [];
  const nexts: string[] = [];
  const { w, committed } = window(['0', '1', '2'], async (records, next) => {
    if (records.some((r) => r.eventId === 'huge')) {
      throw new KeyflowError('RECORD_TOO_LARGE', 'over max.message.bytes', { retriable: false });
    }
    visible.push(...records.map((r) => r.eventId));
    nexts.push(next);
  });
  await w.settle(event('0', 'a'));
  await w.settle(event('1', 'huge', 'small-of-1'));
  await w.settle(event('2', 'c'));
  await w.flush();
  expect(visible).toEqual(['a', 'letter-1', 'c']);
  expect(nexts).toEqual(['1', '2', '3']);
  expect(committed).toEqual(['2']);
});

test('the runner: an aborted transaction fails the delivery with nothing committed; a fenced one ends it quietly', async () => {
  const spec = {
    kind: 'action' as const,
    name: 'count',
    inputs: ['in'],
    outputs: ['out'],
    handler: {
      read: async () => null,
      decide: (e: { key: string }) => ({ plan: {}, emit: [{ topic: 'out', key: e.key, value: 1 }] }),
      write: async () => 'applied' as const,
    },
  };
  const h = await harness(spec, undefined, { infraRetryBudgetMs: 20, deliveryGuarantee: 'exactly-once' });
  const aborted = async () => {
    throw new KeyflowError('PRODUCE_FAILED', 'transaction aborted');
  };
  await expect(
    h.deliver([message(0, 'a', 1), message(1, 'b', 1)], { transact: aborted }),
  ).rejects.toMatchObject({
    code: 'PRODUCE_FAILED',
  });
  const fenced = async () => {
    throw new KeyflowError('PARTITION_FENCED', 'a newer owner');
  };
  await h.deliver([message(0, 'a', 1), message(1, 'b', 1)], { transact: fenced });
  expect(h.commits).toEqual([]);
  expect(h.sent).toEqual([]);
  // The same delivery fetched again settles in one transaction.
  await h.deliver([message(0, 'a', 1), message(1, 'b', 1)]);
  expect(h.commits).toEqual(['2']);
  expect(h.sent.map((r) => r.key)).toEqual(['a', 'b']);
});
