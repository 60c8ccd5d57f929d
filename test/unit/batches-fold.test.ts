// The fold stage counts a row's status transition once. Its pure step; `reconcile`, which reads a row's
// pending entry back against the row as stored; and whole fetches on an in-memory store with a crash
// placed between the counter slot write and the rows: a transition stays pending until its row is
// written, however the fetches after the crash are cut and whatever compaction removed.
import type { Db } from 'mongodb';
import { foldBatchStatus, foldStage, type FoldState } from '../../src/batches/fold-stage';
import { encodeEntry, reconcile, transitionId } from '../../src/batches/pending-entries';
import { COLLECTIONS, flowNames, statusKey } from '../../src/batches/names';
import type { RowState } from '../../src/batches/reducers';
import type { BatchStatus } from '../../src/batches/schemas';
import type { BatchDoc } from '../../src/batches/store';
import type { StageEvent } from '../../src/topology/types';
import { FakeDb } from './fakes/mongo';

const status = (over: Partial<BatchStatus> = {}): BatchStatus => ({
  batchId: 7,
  customerId: 'acme',
  assetId: 'a1',
  status: 'completed',
  error: null,
  finished: 1_000,
  ...over,
});

const delivery = (v: BatchStatus, partition = 2): StageEvent<BatchStatus> => ({
  key: statusKey(v.batchId, v.assetId),
  value: v,
  eventId: `${v.assetId}-${v.status}-${v.finished}`,
  occurredAt: undefined,
  tenantId: undefined,
  traceId: 't',
  topic: 'status',
  partition,
  offset: '0',
  attempt: 1,
  headers: {},
  consumedAt: 0,
});

const WAITING: RowState = { status: 'waiting', error: null, finished: null };
const DONE: RowState = { status: 'completed', error: null, finished: 1_000 };
const FAILED: RowState = { status: 'error', error: 'gone', finished: 2_000 };

const waiting = (): FoldState => ({
  row: { ...WAITING, customerId: 'acme', batchId: 7 },
  stored: WAITING,
  counted: { origin: WAITING, drop: [], undo: null },
  slot: { version: 3, pending: [] },
});

describe('the pure step', () => {
  test('waiting → completed moves the counted state, guarded on the row and slot as read', () => {
    const step = foldBatchStatus(delivery(status()), waiting());
    expect(step.plan).toMatchObject({
      kind: 'move',
      from: WAITING,
      to: DONE,
      stored: WAITING,
      slotVersion: 3,
    });
    expect(step.state.row!.status).toBe('completed');
  });

  test('a duplicate or older record moves nothing and only touches the batch', () => {
    const { state } = foldBatchStatus(delivery(status()), waiting());
    const dup = foldBatchStatus(delivery(status()), state);
    expect(dup.plan).toMatchObject({ kind: 'touch', batchId: 7, from: DONE, to: DONE });
    expect(dup.outcome).toBe('duplicate');
    const older = foldBatchStatus(delivery(status({ status: 'error', error: 'x', finished: 500 })), state);
    expect(older.plan).toMatchObject({ kind: 'touch' });
  });

  test('a later error after completed moves the row back: the counts follow the transition', () => {
    const { state } = foldBatchStatus(delivery(status()), waiting());
    const later = foldBatchStatus(
      delivery(status({ status: 'error', error: 'gone', finished: 2_000 })),
      state,
    );
    expect(later.plan).toMatchObject({ kind: 'move', from: DONE, to: FAILED });
  });

  test('a record for a missing row, or another customer’s, plans nothing', () => {
    expect(foldBatchStatus(delivery(status()), { ...waiting(), row: null, stored: null }).plan).toBeNull();
    expect(foldBatchStatus(delivery(status({ customerId: 'rival' })), waiting()).plan).toBeNull();
  });
});

describe('reconcile: a pending entry read back against its row', () => {
  const row = '7:a1';
  let entry: string;
  beforeAll(() => {
    entry = encodeEntry({ rowId: row, from: WAITING, to: DONE, base: WAITING });
  });

  test('the row still holds the entry’s base: the entry is counted and the fold goes on from it', () => {
    expect(reconcile(row, WAITING, undefined, '7:2', [entry])).toEqual({
      counted: DONE,
      origin: WAITING,
      drop: [entry],
      undo: null,
    });
  });

  test('the row holds the entry’s state, stamped by this slot: settled', () => {
    expect(reconcile(row, DONE, '7:2', '7:2', [entry])).toMatchObject({ counted: DONE, undo: null });
  });

  test('another writer moved the row, or wrote the same state from its own slot: counted back', () => {
    const undo = { from: WAITING, to: DONE };
    expect(reconcile(row, FAILED, '7:5', '7:2', [entry])).toMatchObject({ counted: FAILED, undo });
    expect(reconcile(row, DONE, '7:5', '7:2', [entry])).toMatchObject({ counted: DONE, undo });
  });

  test('a row stamped by this slot at a state on the way to the entry’s: only the rest is undone', () => {
    const chain = encodeEntry({ rowId: row, from: WAITING, to: FAILED, base: WAITING });
    expect(reconcile(row, DONE, '7:2', '7:2', [chain])).toMatchObject({
      counted: DONE,
      undo: { from: DONE, to: FAILED },
    });
  });

  test('an entry of the first release (the state moved to alone) is read as well', () => {
    const old = transitionId(row, DONE);
    expect(reconcile(row, WAITING, undefined, '7:2', [old])).toMatchObject({ counted: DONE, drop: [old] });
    expect(reconcile(row, DONE, undefined, '7:2', [old])).toMatchObject({ counted: DONE, undo: null });
    expect(reconcile('7:a', WAITING, undefined, '7:2', [old]).drop).toEqual([]);
  });
});

describe('whole fetches with a crash before the rows', () => {
  const handler = foldStage(flowNames('t')).handler;

  function setUp(assets: string[]): FakeDb {
    const fake = new FakeDb();
    const batch: BatchDoc = {
      _id: 7,
      customerId: 'acme',
      submitted: new Date(0),
      count: assets.length,
      completed: 0,
      errors: 0,
      superseded: 0,
      finished: null,
      reingestOf: null,
      countsRev: 0,
      adjustCompleted: 0,
      adjustErrors: 0,
    };
    fake.collection(COLLECTIONS.batches).insert({ ...batch });
    for (const a of assets) {
      fake.collection(COLLECTIONS.batchAssets).insert({
        _id: statusKey(7, a),
        batchId: 7,
        customerId: 'acme',
        assetId: a,
        origin: 'https://x/',
        status: 'waiting',
        error: null,
        finished: null,
        created: new Date(0),
        supersededBy: null,
      });
    }
    return fake;
  }

  /** One fetch through the fold as the runner drives it: read, decide in order, write. */
  async function fold(db: Db, events: StageEvent<BatchStatus>[]): Promise<number> {
    const ctx = { stage: 't.batches.fold', db, now: () => 0 };
    const states = new Map(await handler.read(events, ctx));
    const plans = [];
    for (const [index, e] of events.entries()) {
      const step = handler.decide(e, states.get(e.key)!);
      states.set(e.key, step.state);
      if (step.plan) plans.push({ index, event: e, plan: step.plan });
    }
    return (await handler.write(plans, ctx)).failed.length;
  }

  const crashBeforeRows = (fake: FakeDb) =>
    fake.collection(COLLECTIONS.batchAssets).failNext(new Error('the process died'));

  const batch = (fake: FakeDb) => fake.collection(COLLECTIONS.batches).docs.get('7')!;
  const done = (assetId: string, finished = 1_000, partition = 2) =>
    delivery(status({ assetId, finished }), partition);

  test('a fetch [a1, a2] dies before its rows; the new owner’s fetches are cut after a1: a2 counts once', async () => {
    const fake = setUp(['a1', 'a2', 'a3']);
    crashBeforeRows(fake);
    await expect(fold(fake.db, [done('a1'), done('a2')])).rejects.toThrow('the process died');
    expect(fake.collection(COLLECTIONS.batchSlots).docs.get('7:2')).toMatchObject({ completed: 2 });

    expect(await fold(fake.db, [done('a1')])).toBe(0);
    expect(await fold(fake.db, [done('a2')])).toBe(0);
    expect(batch(fake)).toMatchObject({ completed: 2, errors: 0, finished: null });

    expect(await fold(fake.db, [done('a3')])).toBe(0);
    expect(batch(fake)).toMatchObject({ completed: 3, errors: 0, finished: new Date(1_000) });
    expect(fake.collection(COLLECTIONS.batchSlots).docs.get('7:2')).toMatchObject({ pending: [] });
  });

  test('a counted record that compaction removed: the next record of the row folds from what was counted', async () => {
    const fake = setUp(['a1', 'a2']);
    crashBeforeRows(fake);
    await expect(fold(fake.db, [done('a1')])).rejects.toThrow('the process died');
    // Only a1's later record is left in the compacted partition.
    const later = delivery(status({ status: 'error', error: 'gone', finished: 2_000 }));
    expect(await fold(fake.db, [later, done('a2')])).toBe(0);
    expect(batch(fake)).toMatchObject({ completed: 1, errors: 1, finished: new Date(2_000) });
    expect(fake.collection(COLLECTIONS.batchAssets).docs.get('7:a1')).toMatchObject({ status: 'error' });
  });

  test('a counted record whose later, older-finishing record outlived it: the row takes the counted state', async () => {
    const fake = setUp(['a1']);
    crashBeforeRows(fake);
    await expect(fold(fake.db, [done('a1', 5_000)])).rejects.toThrow('the process died');
    const older = delivery(status({ status: 'error', error: 'late', finished: 4_000 }));
    expect(await fold(fake.db, [older])).toBe(0);
    expect(batch(fake)).toMatchObject({ completed: 1, errors: 0, finished: new Date(5_000) });
    expect(fake.collection(COLLECTIONS.batchAssets).docs.get('7:a1')).toMatchObject({ status: 'completed' });
  });

  test('a former owner’s row write that lands after the new owner took its entry over counts once', async () => {
    const fake = setUp(['a1']);
    crashBeforeRows(fake);
    await expect(fold(fake.db, [done('a1')])).rejects.toThrow('the process died');
    // The new owner folds a later record of a1; just before its row write, the former owner's late
    // write of a1 (completed, guarded on waiting, stamped with the same slot) lands.
    const rows = fake.collection(COLLECTIONS.batchAssets);
    rows.beforeNext(() =>
      Object.assign(rows.docs.get('7:a1')!, {
        status: 'completed',
        finished: new Date(1_000),
        countedIn: '7:2',
      }),
    );
    const later = delivery(status({ status: 'error', error: 'gone', finished: 2_000 }));
    expect(await fold(fake.db, [later])).toBe(1); // its row write lost: retried from read
    expect(await fold(fake.db, [later])).toBe(0);
    expect(batch(fake)).toMatchObject({ completed: 0, errors: 1, finished: new Date(2_000) });
    expect(fake.collection(COLLECTIONS.batchSlots).docs.get('7:2')).toMatchObject({ pending: [] });
  });

  test('a row another partition wrote while this one’s entry waited (added partitions) is counted back', async () => {
    const fake = setUp(['a1', 'a2']);
    crashBeforeRows(fake);
    await expect(fold(fake.db, [done('a1', 1_000, 2)])).rejects.toThrow('the process died');
    // The same record, re-emitted after partitions were added, lands on partition 5 and is folded there.
    expect(await fold(fake.db, [done('a1', 1_000, 5)])).toBe(0);
    expect(await fold(fake.db, [done('a2', 1_000, 5)])).toBe(0);
    // Until partition 2 redelivers, its entry holds the batch open (its count is in both slots).
    expect(batch(fake)).toMatchObject({ completed: 3, finished: null });
    expect(await fold(fake.db, [done('a1', 1_000, 2)])).toBe(0);
    expect(batch(fake)).toMatchObject({ completed: 2, errors: 0, finished: new Date(1_000) });
  });
});
