// Replay's reads of a domain's archive through its `_id`-keyed entity history (state/entity-history.ts):
// an entity's events are one read of its history document and one `$in` read of the archive by _id, so
// replaying an entity or a page of them costs the same on every server however large the tables are.
import type { Collection, Db, Document } from 'mongodb';
import type { ArchivedEvent } from '../state/archive';
import {
  buildHistory,
  historyBuilt,
  markHistoryBuilt,
  historyOf,
  touchedSince,
  walkHistory,
  type HistoryDoc,
} from '../state/entity-history';

/**
 * Ids per `$in` read. SecantusDB answers one `_id: {$in}` of 1,000 ids in seconds (superlinear) and
 * mongo-java-server in most of one; pieces of this size, read side by side, take a fraction of that.
 */
export const IN_CHUNK = 64;

/** Documents by _id in `$in` pieces of IN_CHUNK, read side by side. */
export async function findByIds<T extends Document>(
  coll: Collection<T>,
  ids: readonly unknown[],
): Promise<T[]> {
  const parts: Promise<T[]>[] = [];
  for (let i = 0; i < ids.length; i += IN_CHUNK) {
    parts.push(coll.find({ _id: { $in: ids.slice(i, i + IN_CHUNK) } } as never).toArray() as Promise<T[]>);
  }
  return (await Promise.all(parts)).flat();
}

/**
 * Reads shared by the tables of one page: the full pass hands the same ids array to every table of a
 * group (cleanInBulk), and each reads the same histories, and the same archived events, by _id (the
 * appointment's two tables read its history three times and its archive twice). Keyed by that array, a
 * page's reads go with it; a lone entity's read (a fresh array) shares nothing.
 */
const pageReads = new WeakMap<readonly string[], Map<string, Promise<unknown>>>();

function sharedRead<T>(ids: readonly string[], key: string, read: () => Promise<T>): Promise<T> {
  let reads = pageReads.get(ids);
  if (!reads) pageReads.set(ids, (reads = new Map()));
  let p = reads.get(key) as Promise<T> | undefined;
  if (!p) {
    p = read();
    reads.set(key, p);
    // A failed read is not kept: the next table (or a retry) reads again.
    p.catch(() => reads.delete(key));
  }
  return p;
}

/** The history documents of these entities (shared by a page's tables). */
export function historiesByIds(db: Db, archive: string, ids: readonly string[]): Promise<HistoryDoc[]> {
  return sharedRead(ids, `history\u0000${db.databaseName}\u0000${archive}`, () =>
    findByIds(historyOf(db, archive), ids),
  );
}

export type ArrivalOrder = 'occurred' | 'arrival';

/** The reducers' order (occurredAt, then _id) or the order of arrival (arrivedAt, then offset). */
function comparator(order: ArrivalOrder) {
  return order === 'occurred'
    ? (a: ArchivedEvent, b: ArchivedEvent) =>
        a.occurredAt - b.occurredAt || (a._id < b._id ? -1 : a._id > b._id ? 1 : 0)
    : (a: ArchivedEvent, b: ArchivedEvent) => a.arrivedAt - b.arrivedAt || a.offset - b.offset;
}

export interface EntityHistories<V extends Document> {
  histories: Map<string, HistoryDoc>;
  /** Every asked id is a key; its events in the asked order. */
  events: Map<string, ArchivedEvent<V>[]>;
}

/** The histories and archived events of many entities: two reads by _id. */
export async function eventsByHistory<V extends Document>(
  db: Db,
  archive: string,
  ids: readonly string[],
  order: ArrivalOrder = 'occurred',
): Promise<EntityHistories<V>> {
  const histories = new Map((await historiesByIds(db, archive, ids)).map((h) => [h._id, h] as const));
  const archiveIds = [...histories.values()].flatMap((h) => h.events);
  const docs = (await sharedRead(ids, `archive\u0000${db.databaseName}\u0000${archive}`, () =>
    findByIds(db.collection(archive), archiveIds),
  )) as unknown as ArchivedEvent<V>[];
  const events = new Map<string, ArchivedEvent<V>[]>(ids.map((id) => [id, []]));
  for (const d of docs) events.get(d.entityId)?.push(d);
  const by = comparator(order);
  for (const list of events.values()) list.sort(by);
  return { histories, events };
}

/** Builds the history of events archived before the live path kept it (once per store). */
export function prepareHistory(
  db: Db,
  archive: string,
  rowIdOf?: (doc: Record<string, unknown>) => string,
): Promise<number> {
  return buildHistory(db, archive, rowIdOf);
}

/** The entity ids after `after` up to `to` (inclusive), in order, as one streaming read. */
export async function* walkEntities(
  db: Db,
  archive: string,
  after: string | undefined,
  to: string | undefined,
): AsyncIterable<string> {
  for await (const d of walkHistory(db, archive, { after, to }, 2000).project<{ _id: string }>({ _id: 1 }))
    yield d._id;
}

export async function* touchedEntities(db: Db, archive: string, since: Date): AsyncIterable<string> {
  for await (const d of touchedSince(db, archive, since, 2000)) yield d._id;
}

/** About how many entities have a history (the full pass's estimate). */
export const historyCount = (db: Db, archive: string) => historyOf(db, archive).estimatedDocumentCount();

/**
 * About `n` entity ids spread over the history (the full pass cuts its shards' ranges at their
 * quantiles): every k-th entity of one projected read, every one when the history holds at most `n`.
 * Not `$sample`: mongo-java-server sorts its sample with a random comparator, which Java refuses once
 * the collection is large ("Comparison method violates its general contract"). This is replay's own
 * read, never the live path's.
 */
export async function sampleEntities(
  db: Db,
  archive: string,
  n: number,
): Promise<{ ids: string[]; complete: boolean }> {
  const history = historyOf(db, archive);
  const every = Math.max(1, Math.ceil((await history.estimatedDocumentCount()) / Math.max(1, n)));
  const ids: string[] = [];
  let i = 0;
  const cursor = history.find({}, { projection: { _id: 0, entityId: 1 }, batchSize: 5000 });
  for await (const d of cursor as AsyncIterable<{ entityId?: unknown }>) {
    if (typeof d.entityId === 'string' && i++ % every === 0) ids.push(d.entityId);
  }
  return { ids, complete: every === 1 };
}

/** Archives whose history is known built, per database handle (it stays built once it is). */
const ready = new WeakMap<Db, Set<string>>();

/**
 * Whether reads may go through the archive's history (built, see buildHistory); until replay builds it
 * on an older store, the routes keep their secondary-field queries.
 */
export async function historyReady(db: Db, archive: string): Promise<boolean> {
  if (ready.get(db)?.has(archive)) return true;
  if (!(await historyBuilt(db, archive))) {
    // An empty archive: every event from now on is archived by a live path that lists it first.
    if ((await db.collection(archive).estimatedDocumentCount()) > 0) return false;
    await markHistoryBuilt(db, archive);
  }
  if (!ready.has(db)) ready.set(db, new Set());
  ready.get(db)!.add(archive);
  return true;
}
