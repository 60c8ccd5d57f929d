// The applied-event guard applies each event id to a document at most once, even when the same ids are
// redelivered and two clients race on the same _id (including the very first write that creates it).
import { MongoClient } from 'mongodb';
import { APPLIED_WINDOW, applyOnce } from '../../src/state/guard';
import { cleanupAll, env, freshDb, onCleanup } from '../helpers';

jest.setTimeout(60_000);
afterAll(cleanupAll);

interface Counter {
  _id: string;
  n?: number;
  seen?: string[];
  _applied?: string[];
}

test('a first apply creates the document; the same event id again is a duplicate that changes nothing', async () => {
  const { db } = await freshDb();
  const coll = db.collection<Counter>('counters');
  expect(await applyOnce(coll, 'c1', 'e1', { $inc: { n: 1 }, $push: { seen: 'e1' } })).toBe('applied');
  expect(await applyOnce(coll, 'c1', 'e1', { $inc: { n: 1 }, $push: { seen: 'e1' } })).toBe('duplicate');
  expect(await applyOnce(coll, 'c1', 'e2', { $inc: { n: 1 }, $push: { seen: 'e2' } })).toBe('applied');
  expect(await coll.findOne({ _id: 'c1' })).toEqual({
    _id: 'c1',
    n: 2,
    seen: ['e1', 'e2'],
    _applied: ['e1', 'e2'],
  });
});

test('the applied list keeps only the most recent ids, so documents stay small, and an older id applies again', async () => {
  const { db } = await freshDb();
  const coll = db.collection<Counter>('counters');
  for (let i = 0; i < 10; i++)
    expect(await applyOnce(coll, 'c1', `e${i}`, { $inc: { n: 1 } }, { window: 4 })).toBe('applied');
  const doc = await coll.findOne({ _id: 'c1' });
  expect(doc).toEqual({ _id: 'c1', n: 10, _applied: ['e6', 'e7', 'e8', 'e9'] });
  expect(await applyOnce(coll, 'c1', 'e9', { $inc: { n: 1 } }, { window: 4 })).toBe('duplicate');
  // The limit, as documented: an id that left the window is applied again.
  expect(await applyOnce(coll, 'c1', 'e0', { $inc: { n: 1 } }, { window: 4 })).toBe('applied');
  expect((await coll.findOne({ _id: 'c1' }))!.n).toBe(11);
  expect(APPLIED_WINDOW).toBeGreaterThanOrEqual(16);
});

test('two clients hammering one _id with distinct and repeated ids apply each distinct id exactly once', async () => {
  const { db } = await freshDb();
  // A second, independent connection pool: the race is between two clients, not two calls on one.
  const other = new MongoClient(env('MONGO_URL'));
  await other.connect();
  onCleanup(() => other.close());
  const a = db.collection<Counter>('race');
  const b = other.db(db.databaseName).collection<Counter>('race');

  const distinct = Array.from({ length: 40 }, (_, i) => `ev-${i}`);
  // Every id is sent twice by each client, in different orders, so each is attempted four times.
  const plan = (coll: typeof a, ids: string[]) =>
    Promise.all(ids.map((id) => applyOnce(coll, 'hot', id, { $inc: { n: 1 } })));
  for (const round of [0, 1, 2]) {
    const results = await Promise.all([
      plan(
        a,
        distinct.map((id) => `${id}-r${round}`),
      ),
      plan(
        b,
        [...distinct].reverse().map((id) => `${id}-r${round}`),
      ),
      plan(
        a,
        [...distinct].reverse().map((id) => `${id}-r${round}`),
      ),
      plan(
        b,
        distinct.map((id) => `${id}-r${round}`),
      ),
    ]);
    const flat = results.flat();
    expect(flat.filter((r) => r === 'applied')).toHaveLength(distinct.length);
    expect(flat.filter((r) => r === 'duplicate')).toHaveLength(distinct.length * 3);
  }
  const doc = await a.findOne({ _id: 'hot' });
  expect(doc?.n).toBe(distinct.length * 3);
});

test('two clients racing to create many fresh documents lose no event to the insert race', async () => {
  const { db } = await freshDb();
  const other = new MongoClient(env('MONGO_URL'));
  await other.connect();
  onCleanup(() => other.close());
  const a = db.collection<Counter>('fresh');
  const b = other.db(db.databaseName).collection<Counter>('fresh');
  const ids = Array.from({ length: 30 }, (_, i) => `doc-${i}`);
  // Distinct event ids on the same brand-new _id: both must apply, though only one insert can win.
  await Promise.all([
    ...ids.map((id) => applyOnce(a, id, `${id}-from-a`, { $inc: { n: 1 } })),
    ...ids.map((id) => applyOnce(b, id, `${id}-from-b`, { $inc: { n: 1 } })),
  ]);
  const docs = await a.find({}).toArray();
  expect(docs).toHaveLength(ids.length);
  expect(docs.every((d) => d.n === 2)).toBe(true);
});
