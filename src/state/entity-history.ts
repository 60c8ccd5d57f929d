// An entity's history reachable by _id: for each archive, a collection `<archive>_byEntity` holding one
// document per entity (`_id` = the entity id) that lists the archive ids of its events and, where a
// table's row ids are not derivable from them, its row ids. mongo-java-server has no secondary index
// (it ignores non-unique ones), so `find({ entityId })` scans the archive there; a read by _id costs
// the same on every server whatever the size of the tables. The live stages write it by _id, in bulk,
// before the archive insert (so every archived event is listed; an id listed whose insert then failed
// is simply not found). `touchedAt` marks the last live write: `keyflow replay --since` reads it.
import type { AnyBulkWriteOperation, Collection, Db } from 'mongodb';
import { classify } from '../errors';
import type { PlanFailure, TaggedOp } from './bulk';
import { writeTagged } from './bulk';
import type { DeclaredQuery } from '../runtime/dataflow';
import type { CollectionIndexes } from './mongo';

export interface HistoryDoc {
  /** The entity id. */
  _id: string;
  /** The same, for the walk's index (SecantusDB plans `_id_` for equality and $in only). */
  entityId: string;
  /** Archive _ids of the entity's events. */
  events: string[];
  /** Row _ids of tables whose rows are not keyed by the entity or its events (conversions). */
  rows?: string[];
  /** When a live write last listed an event of the entity. */
  touchedAt: Date;
}

/** The document saying the history of every event archived before the live path wrote it is built. */
const BUILT = '\u0000built';

export const historyName = (archive: string) => `${archive}_byEntity`;

export function historyOf(db: Db, archive: string): Collection<HistoryDoc> {
  return db.collection<HistoryDoc>(historyName(archive));
}

export function historyIndexes(archive: string): CollectionIndexes {
  return {
    collection: historyName(archive),
    indexes: [
      // The full pass's walk of a shard's id range, and `--since`'s entities touched after a time.
      { key: { entityId: 1 }, name: 'entity' },
      { key: { touchedAt: 1 }, name: 'touched' },
    ],
  };
}

/** The queries run on an archive's history, for the index test (`name` prefixes them). */
export function historyQueries(name: string, archive: string, sample: string): DeclaredQuery[] {
  const collection = historyName(archive);
  return [
    { name: `${name}.history.upsert`, hot: true, collection, filter: { _id: sample } },
    { name: `${name}.history.byIds (replay)`, collection, filter: { _id: { $in: [sample] } } },
    {
      name: `${name}.history.walk (full pass, one streaming read per shard)`,
      collection,
      filter: { entityId: { $gt: sample, $lte: `${sample}~` } },
      sort: { entityId: 1 },
    },
    {
      name: `${name}.history.touchedSince (replay --since)`,
      collection,
      filter: { touchedAt: { $gte: new Date(0) } },
    },
  ];
}

export interface HistoryEntry {
  /** The plan index the write is tagged with (the PlanCut of the stage). */
  index: number;
  entityId: string;
  archiveId: string;
  rowId?: string;
}

/** One upsert by _id per entity, tagged with the entity's first plan index. */
export function historyOps(entries: readonly HistoryEntry[], now = new Date()): TaggedOp<HistoryDoc>[] {
  const byEntity = new Map<string, { index: number; events: Set<string>; rows: Set<string> }>();
  for (const e of entries) {
    let h = byEntity.get(e.entityId);
    if (!h) byEntity.set(e.entityId, (h = { index: e.index, events: new Set(), rows: new Set() }));
    h.index = Math.min(h.index, e.index);
    h.events.add(e.archiveId);
    if (e.rowId !== undefined) h.rows.add(e.rowId);
  }
  return [...byEntity].map(([entityId, h]) => {
    const add: Record<string, unknown> = { events: { $each: [...h.events] } };
    if (h.rows.size) add.rows = { $each: [...h.rows] };
    const op: AnyBulkWriteOperation<HistoryDoc> = {
      updateOne: {
        filter: { _id: entityId },
        update: { $addToSet: add as never, $set: { entityId, touchedAt: now } },
        upsert: true,
      },
    };
    return { index: h.index, op };
  });
}

/** The live stages' write: one unordered bulkWrite by _id. */
export function recordHistory(
  db: Db,
  archive: string,
  entries: readonly HistoryEntry[],
): Promise<PlanFailure[]> {
  return writeTagged(historyOf(db, archive), historyOps(entries));
}

/** The history documents of these entities, by _id (absent entities have none). */
export async function historiesOf(
  db: Db,
  archive: string,
  ids: readonly string[],
): Promise<Map<string, HistoryDoc>> {
  if (ids.length === 0) return new Map();
  const docs = await historyOf(db, archive)
    .find({ _id: { $in: [...ids] } })
    .toArray();
  return new Map(docs.map((d) => [d._id, d]));
}

/** Whether the history lists every archived event (built once from the archive, then kept live). */
export async function historyBuilt(db: Db, archive: string): Promise<boolean> {
  return (await historyOf(db, archive).findOne({ _id: BUILT })) !== null;
}

/**
 * Builds the history of events archived before the live path wrote it: one read of the whole archive
 * (projection only), upserted by _id in batches, then the `built` mark. Idempotent, and safe beside the
 * live stages (they add what they archive themselves). Returns the number of archive entries read.
 */
export async function buildHistory(
  db: Db,
  archive: string,
  rowIdOf?: (doc: Record<string, unknown>) => string,
  onProgress?: (read: number) => void,
): Promise<number> {
  const coll = historyOf(db, archive);
  if (await historyBuilt(db, archive)) return 0;
  const cursor = db
    .collection(archive)
    .find({}, rowIdOf ? {} : { projection: { _id: 1, entityId: 1 } })
    .batchSize(5000);
  let read = 0;
  let pending: HistoryEntry[] = [];
  const flush = async () => {
    if (!pending.length) return;
    const ops = historyOps(pending, new Date(0)).map((o) => o.op);
    // Built entries must not look touched now: `touchedAt` only moves forward ($max).
    for (const op of ops) {
      const u = (op as { updateOne: { update: Record<string, Record<string, unknown>> } }).updateOne.update;
      u.$max = { touchedAt: u.$set!.touchedAt };
      u.$set = { entityId: u.$set!.entityId };
    }
    try {
      await coll.bulkWrite(ops, { ordered: false });
    } catch (err) {
      throw classify(err);
    }
    pending = [];
  };
  for await (const doc of cursor) {
    const d = doc as unknown as Record<string, unknown> & { _id: string; entityId: string };
    pending.push({ index: 0, entityId: d.entityId, archiveId: d._id, rowId: rowIdOf?.(d) });
    read++;
    if (pending.length >= 5000) {
      await flush();
      onProgress?.(read);
    }
  }
  await flush();
  await markHistoryBuilt(db, archive);
  return read;
}

/** Says the history lists every archived event (a store whose history was written from its first event). */
export async function markHistoryBuilt(db: Db, archive: string): Promise<void> {
  await historyOf(db, archive).updateOne(
    { _id: BUILT },
    { $set: { builtAt: new Date() } as never },
    { upsert: true },
  );
}

/**
 * The entity ids of the histories in [from, to) after `after`, in order, as one streaming cursor: the
 * full pass reads a shard's whole range with it (one scan where the server has no index).
 */
export function walkHistory(
  db: Db,
  archive: string,
  range: { after?: string; to?: string },
  batchSize: number,
) {
  const entityId: Record<string, string> = { $gt: range.after ?? '' };
  if (range.to !== undefined) entityId.$lte = range.to;
  return historyOf(db, archive).find({ entityId }).sort({ entityId: 1 }).batchSize(batchSize);
}

/** Entities a live write touched at or after `since`. */
export function touchedSince(db: Db, archive: string, since: Date, batchSize: number) {
  return historyOf(db, archive)
    .find({ touchedAt: { $gte: since } }, { projection: { _id: 1 } })
    .batchSize(batchSize);
}
