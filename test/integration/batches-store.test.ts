// The batches store on the real Mongo-protocol server: supersede marks each earlier row once, with the
// first later batch, however many assets a batch has, and every filter it sends is one queries.ts
// declares (so the index test explains it); the ops listing shows the newest batches, newest first,
// also past ids that were allocated but never became a batch.
import { MongoClient, type CommandStartedEvent, type Document } from 'mongodb';
import { COLLECTIONS, statusKey } from '../../src/batches/names';
import { BATCH_QUERIES } from '../../src/batches/queries';
import { batchesOf, createBatch, recentBatchProgress, rowsOf } from '../../src/batches/store';
import { cleanupAll, env, freshDb, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

const assetsOf = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ id: `a${from + i}`, origin: `https://x/${from + i}` }));

test('supersede marks every earlier row of 1,200 assets with the first later batch only', async () => {
  const { db } = await freshDb('kfstore');
  const first = await createBatch(db, 'acme', assetsOf(1200), new Date(0));
  const second = await createBatch(db, 'acme', assetsOf(1200), new Date(1));
  await createBatch(db, 'other', assetsOf(3), new Date(1)); // another customer's same asset ids
  const third = await createBatch(db, 'acme', assetsOf(2, 1199), new Date(2));

  const marks = async (batchId: number) =>
    (await rowsOf(db).find({ batchId }).toArray()).map((r) => r.supersededBy);
  expect(new Set(await marks(first._id))).toEqual(new Set([second._id]));
  const ofSecond = await rowsOf(db)
    .find({ batchId: second._id, supersededBy: { $ne: null } })
    .toArray();
  expect(ofSecond.map((r) => r._id).sort()).toEqual(
    [statusKey(second._id, 'a1199')], // a1200 is new to the third batch
  );
  expect(ofSecond[0]!.supersededBy).toBe(third._id);
  expect(new Set(await marks(third._id))).toEqual(new Set([null]));
  expect((await batchesOf(db).findOne({ _id: first._id }))!.superseded).toBe(1200);
  expect((await batchesOf(db).findOne({ _id: second._id }))!.superseded).toBe(1);
});

test('the ops listing is the newest batches, newest first, past ids never used', async () => {
  const { db } = await freshDb('kfstore');
  expect(await recentBatchProgress(db, 5)).toEqual([]);
  const ids: number[] = [];
  for (let i = 0; i < 8; i++) {
    ids.push((await createBatch(db, 'acme', assetsOf(2), new Date(i)))._id);
    // Allocated, but the batch never got written (a crash between the counter and the insert).
    if (i === 1 || i === 6) {
      await db
        .collection<{ _id: string; seq: number }>(COLLECTIONS.counters)
        .updateOne({ _id: 'batch' }, { $inc: { seq: 25 } });
    }
  }
  const listed = await recentBatchProgress(db, 5);
  expect(listed.map((b) => b.id)).toEqual(ids.slice(3).reverse().map(String));
  expect(listed[0]).toEqual({ id: String(ids[7]), status: 'running', total: 2, done: 0, failed: 0 });
  expect((await recentBatchProgress(db, 20)).map((b) => b.id)).toEqual(ids.reverse().map(String));
});

/** A filter's shape: its fields and operators, with every value left out. */
function shape(filter: unknown): unknown {
  if (Array.isArray(filter)) return '[]';
  if (filter === null || typeof filter !== 'object' || filter instanceof Date) return '?';
  const obj = filter as Document;
  if ('_bsontype' in obj) return '?';
  return Object.fromEntries(
    Object.keys(obj)
      .sort()
      .map((k) => [k, shape(obj[k])]),
  );
}

/** The filters a command carries: a find's, an aggregate's $match, each update's or delete's. */
function filtersOf(e: CommandStartedEvent): Document[] {
  const c = e.command;
  if (e.commandName === 'find' || e.commandName === 'count') return [c.filter ?? c.query ?? {}];
  if (e.commandName === 'aggregate') {
    return (c.pipeline as Document[]).filter((st) => st.$match).map((st) => st.$match as Document);
  }
  if (e.commandName === 'update' || e.commandName === 'delete') {
    return ((c.updates ?? c.deletes) as Document[]).map((u) => u.q as Document);
  }
  if (e.commandName === 'findAndModify') return [c.query as Document];
  return [];
}

test('creating a batch that supersedes earlier rows sends only filters queries.ts declares', async () => {
  const client = new MongoClient(env('MONGO_URL'), { monitorCommands: true });
  await client.connect();
  const db = client.db(uniqueName('kfstore').replace(/-/g, '_'));
  onCleanup(async () => {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  });
  await createBatch(db, 'acme', assetsOf(3), new Date(0));
  const sent: { collection: string; filter: Document }[] = [];
  client.on('commandStarted', (e: CommandStartedEvent) => {
    const collection = e.command[e.commandName] as unknown;
    if (typeof collection !== 'string') return;
    for (const filter of filtersOf(e)) sent.push({ collection, filter });
  });
  await createBatch(db, 'acme', assetsOf(3, 1), new Date(1));

  const declared = new Set(BATCH_QUERIES.map((q) => JSON.stringify([q.collection, shape(q.filter)])));
  // A document by _id alone needs no declaration: the _id index serves it on every server.
  const byIdOnly = (f: Document) => Object.keys(f).join() === '_id';
  const undeclared = sent
    .filter((s) => !byIdOnly(s.filter))
    .map((s) => JSON.stringify([s.collection, shape(s.filter)]))
    .filter((s) => !declared.has(s));
  expect(undeclared).toEqual([]);
  // The supersede recount is among what was sent (the earlier batch had rows to mark).
  expect(sent.some((s) => s.collection === COLLECTIONS.batchAssets && 'supersededBy' in s.filter)).toBe(true);
});
