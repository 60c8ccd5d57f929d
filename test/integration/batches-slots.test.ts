// The fold's counter slots on the real Mongo-protocol server: folds of one batch from several partitions
// at once sum to the true outcomes, a redelivery counts nothing twice, the replay of Batches agrees with
// the counts (and repairs a tampered one so later folds stay right), and a Batches document from before
// the slots moved out keeps its counts as the base. The fold is driven by its handler, without Kafka.
import type { Db } from 'mongodb';
import { foldStage } from '../../src/batches/fold-stage';
import { flowNames, statusKey } from '../../src/batches/names';
import { batchCountsReplay } from '../../src/batches/replay';
import type { BatchStatus } from '../../src/batches/schemas';
import { batchesOf, createBatch, rowsOf, slotsOf } from '../../src/batches/store';
import { ensureIndexes } from '../../src/state/mongo';
import { BATCH_INDEXES } from '../../src/batches/queries';
import type { StageEvent } from '../../src/topology/types';
import { cleanupAll, freshDb } from '../helpers';

afterAll(cleanupAll);

const handler = foldStage(flowNames('t')).handler;

function event(v: BatchStatus, partition: number): StageEvent<BatchStatus> {
  return {
    key: statusKey(v.batchId, v.assetId),
    value: v,
    eventId: `${v.assetId}-${v.status}`,
    occurredAt: undefined,
    tenantId: undefined,
    traceId: 't',
    topic: 't.batch-status',
    partition,
    offset: '0',
    attempt: 1,
    headers: {},
    consumedAt: 0,
  };
}

/** One fetch through the fold: read, decide each event in order, write; returns the failed count. */
async function fold(db: Db, events: StageEvent<BatchStatus>[]): Promise<number> {
  const ctx = { stage: 't.batches.fold', db, now: () => Date.now() };
  const states = new Map(await handler.read(events, ctx));
  const plans = [];
  for (const [index, e] of events.entries()) {
    const step = handler.decide(e, states.get(e.key)!);
    states.set(e.key, step.state);
    if (step.plan) plans.push({ index, event: e, plan: step.plan });
  }
  return (await handler.write(plans, ctx)).failed.length;
}

/** Folds until nothing fails (a lost guard is retried from read, as the runner does). */
async function foldAll(db: Db, events: StageEvent<BatchStatus>[]): Promise<void> {
  for (let i = 0; i < 20; i++) if ((await fold(db, events)) === 0) return;
  throw new Error('the fold kept failing');
}

const outcome = (batchId: number, assetId: string, ok: boolean, finished: number): BatchStatus => ({
  batchId,
  customerId: 'acme',
  assetId,
  status: ok ? 'completed' : 'error',
  error: ok ? null : 'bad image',
  finished,
});

async function setUp() {
  const { db } = await freshDb('kfslots');
  await ensureIndexes(db, BATCH_INDEXES);
  const assets = Array.from({ length: 60 }, (_, i) => ({ id: `a${i}`, origin: `https://x/${i}` }));
  const batch = await createBatch(db, 'acme', assets, new Date(0));
  return { db, batch, assets };
}

test('four partitions folding one batch at once, each twice, count every outcome once', async () => {
  const { db, batch, assets } = await setUp();
  const failedAt = (i: number) => i % 7 === 0;
  const byPartition = [0, 1, 2, 3].map((p) =>
    assets
      .filter((_, i) => i % 4 === p)
      .map((a) => event(outcome(batch._id, a.id, !failedAt(Number(a.id.slice(1))), 1000 + p), p)),
  );
  await Promise.all(byPartition.map((events) => foldAll(db, events)));
  // Redelivered whole: nothing moves again.
  await Promise.all(byPartition.map((events) => foldAll(db, events)));
  const errors = assets.filter((_, i) => failedAt(i)).length;
  const b = (await batchesOf(db).findOne({ _id: batch._id }))!;
  expect(b).toMatchObject({ completed: 60 - errors, errors, slots: expect.arrayContaining([0, 1, 2, 3]) });
  expect(b.finished).toEqual(new Date(1003));
  expect(await slotsOf(db).countDocuments({ batchId: batch._id })).toBe(4);
  const id = String(batch._id);
  expect(await batchCountsReplay.actual(db, id)).toEqual(await batchCountsReplay.expected(db, id));
});

test('a repaired batch stays right as folds go on: replay and the counts agree', async () => {
  const { db, batch, assets } = await setUp();
  const half = assets.slice(0, 30).map((a, i) => event(outcome(batch._id, a.id, i % 2 === 0, 10), i % 2));
  await foldAll(db, half);
  await batchesOf(db).updateOne({ _id: batch._id }, { $inc: { completed: 5 } }); // drift behind the fold
  const id = String(batch._id);
  const expected = await batchCountsReplay.expected(db, id);
  const actual = await batchCountsReplay.actual(db, id);
  expect(actual).not.toEqual(expected);
  await batchCountsReplay.repair!(db, id, expected, actual);
  expect(await batchCountsReplay.actual(db, id)).toEqual(expected);
  // error → completed on a later try, and the other half: the counts still follow the rows.
  const rest = [
    ...assets.slice(0, 30).map((a) => event(outcome(batch._id, a.id, true, 20), 0)),
    ...assets.slice(30).map((a) => event(outcome(batch._id, a.id, false, 30), 1)),
  ];
  await foldAll(db, rest);
  const b = (await batchesOf(db).findOne({ _id: batch._id }))!;
  expect(b).toMatchObject({ completed: 30, errors: 30 });
  expect(b.finished).toEqual(new Date(30));
  expect(await batchCountsReplay.actual(db, id)).toEqual(await batchCountsReplay.expected(db, id));
});

test('a Batches document from before BatchSlots keeps its stored counts as the base', async () => {
  const { db, batch, assets } = await setUp();
  // As the former fold left it: counts on the document, no countsRev, its slots inside `parts`.
  await rowsOf(db).updateMany(
    { _id: { $in: assets.slice(0, 10).map((a) => statusKey(batch._id, a.id)) } },
    { $set: { status: 'completed', finished: new Date(5) } },
  );
  await batchesOf(db).updateOne({ _id: batch._id }, {
    $set: { completed: 10, parts: { 0: { version: 4, pending: [] } } },
    $unset: { countsRev: '', adjustCompleted: '', adjustErrors: '' },
  } as never);
  await foldAll(
    db,
    assets.slice(10).map((a) => event(outcome(batch._id, a.id, true, 50), 0)),
  );
  const b = (await batchesOf(db).findOne({ _id: batch._id }))!;
  expect(b).toMatchObject({ completed: 60, errors: 0 });
  expect(b.finished).toEqual(new Date(50));
  const id = String(batch._id);
  expect(await batchCountsReplay.actual(db, id)).toEqual(await batchCountsReplay.expected(db, id));
});

/** The database, with the next bulk write of BatchAssets failing as a process dying right there would. */
function dyingBeforeRows(db: Db): Db {
  let armed = true;
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== 'collection') return Reflect.get(target, prop, receiver);
      return (name: string) => {
        const c = target.collection(name);
        if (name !== 'BatchAssets') return c;
        return new Proxy(c, {
          get(col, p, r) {
            if (p !== 'bulkWrite' || !armed) return Reflect.get(col, p, r);
            armed = false;
            return () => Promise.reject(new Error('the process died'));
          },
        });
      };
    },
  });
}

test('a fetch that dies between its slot and its rows, redelivered in cut fetches, counts each row once', async () => {
  const { db, batch, assets } = await setUp();
  const done = (i: number) => event(outcome(batch._id, assets[i]!.id, true, 100 + i), 0);
  await expect(fold(dyingBeforeRows(db), [0, 1, 2, 3].map(done))).rejects.toThrow('the process died');
  // The new owner's fetches are cut after the first of them, then go on one at a time.
  for (const i of [0, 1, 2, 3]) await foldAll(db, [done(i)]);
  let b = (await batchesOf(db).findOne({ _id: batch._id }))!;
  expect(b).toMatchObject({ completed: 4, errors: 0, finished: null });
  await foldAll(
    db,
    assets.slice(4).map((_, i) => done(i + 4)),
  );
  b = (await batchesOf(db).findOne({ _id: batch._id }))!;
  expect(b).toMatchObject({ completed: 60, errors: 0, finished: new Date(159) });
  expect(await slotsOf(db).findOne({ _id: `${batch._id}:0` })).toMatchObject({ pending: [] });
  const id = String(batch._id);
  expect(await batchCountsReplay.actual(db, id)).toEqual(await batchCountsReplay.expected(db, id));
});
