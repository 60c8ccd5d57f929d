// The batches tables in MongoDB: Batches (the quick status check, counts derived from rows), BatchAssets
// (one row per asset per batch) and Images (each with its current batch). Every query here is declared
// in queries.ts with the index that serves it.
import type { Db } from 'mongodb';
import { COLLECTIONS, imageId, statusKey } from './names';
import { deriveCounts, type StatusTally } from './reducers';
import type { AssetStatus } from './schemas';

export interface BatchDoc {
  _id: number;
  customerId: string;
  submitted: Date;
  count: number;
  completed: number;
  errors: number;
  superseded: number;
  finished: Date | null;
  /** The batch whose failed assets this one reingests, if any. */
  reingestOf: number | null;
  /** The latest finished time of its rows: the batch's `finished` once no row waits. */
  lastFinished?: Date | null;
  /** The fold partitions that have a counter slot of this batch in BatchSlots (see fold-stage.ts). */
  slots?: number[];
  /**
   * Moves with every write of the counts derived from the slots, which is guarded on it. Absent on a
   * document written before the slots moved to BatchSlots: its stored counts are then the base.
   */
  countsRev?: number;
  /** What replay's repair added to the slots' sums (the recount minus the sums, at the repair). */
  adjustCompleted?: number;
  adjustErrors?: number;
}

/**
 * One fold partition's counter slot of one batch, `_id` `<batchId>:<partition>`: its counts of the
 * transitions it counted, a version its writes are guarded on, and the counted transitions whose rows
 * are not known written yet (one entry per row at most; see fold-stage.ts).
 */
export interface BatchSlotDoc {
  _id: string;
  batchId: number;
  partition: number;
  version: number;
  pending: string[];
  completed: number;
  errors: number;
  lastFinished: Date | null;
}

export const slotId = (batchId: number, partition: number) => `${batchId}:${partition}`;

/** A batch's counts as its slots (and a repair's adjustment) make them; see fold-stage.ts. */
export function deriveFromSlots(
  batch: BatchDoc,
  slots: readonly BatchSlotDoc[],
): { completed: number; errors: number; lastFinished: Date | null; pending: number } {
  const legacy = batch.countsRev === undefined;
  let completed = legacy ? batch.completed : (batch.adjustCompleted ?? 0);
  let errors = legacy ? batch.errors : (batch.adjustErrors ?? 0);
  let last = batch.lastFinished?.getTime() ?? null;
  let pending = 0;
  for (const s of slots) {
    completed += s.completed;
    errors += s.errors;
    pending += s.pending.length;
    if (s.lastFinished) last = Math.max(last ?? 0, s.lastFinished.getTime());
  }
  return { completed, errors, lastFinished: last === null ? null : new Date(last), pending };
}

export interface BatchAssetRow {
  _id: string;
  batchId: number;
  customerId: string;
  assetId: string;
  origin: string;
  status: AssetStatus;
  error: string | null;
  finished: Date | null;
  created: Date;
  /** The first later batch that ingested the same asset. */
  supersededBy: number | null;
  /** The counter slot (`<batchId>:<partition>`) whose fold wrote the row's status last (fold-stage.ts). */
  countedIn?: string;
}

export interface ImageDoc {
  _id: string;
  customerId: string;
  assetId: string;
  origin: string;
  /** The image's current batch. */
  batch: number;
  created: Date;
  status: AssetStatus;
  error: string | null;
  finished: Date | null;
  size?: number;
  mediaType?: string;
  width?: number;
  height?: number;
}

export const batchesOf = (db: Db) => db.collection<BatchDoc>(COLLECTIONS.batches);
export const slotsOf = (db: Db) => db.collection<BatchSlotDoc>(COLLECTIONS.batchSlots);
export const rowsOf = (db: Db) => db.collection<BatchAssetRow>(COLLECTIONS.batchAssets);
export const imagesOf = (db: Db) => db.collection<ImageDoc>(COLLECTIONS.images);

/** Batch ids are integers allocated from one counter per deployment, so they only ever grow. */
export async function allocateBatchId(db: Db): Promise<number> {
  const doc = await db
    .collection<{ _id: string; seq: number }>(COLLECTIONS.counters)
    .findOneAndUpdate({ _id: 'batch' }, { $inc: { seq: 1 } }, { upsert: true, returnDocument: 'after' });
  return doc!.seq;
}

export interface NewAsset {
  id: string;
  origin: string;
}

/**
 * Creates the batch, its waiting rows and the images' current batch, and marks earlier rows of the same
 * assets as superseded. The caller publishes the ingest events afterwards: a row always exists before
 * any status record for it can arrive.
 */
export async function createBatch(
  db: Db,
  customerId: string,
  assets: NewAsset[],
  now: Date,
  reingestOf: number | null = null,
): Promise<BatchDoc> {
  const id = await allocateBatchId(db);
  const batch: BatchDoc = {
    _id: id,
    customerId,
    submitted: now,
    count: assets.length,
    completed: 0,
    errors: 0,
    superseded: 0,
    finished: null,
    reingestOf,
    countsRev: 0,
    adjustCompleted: 0,
    adjustErrors: 0,
  };
  await batchesOf(db).insertOne(batch);
  await rowsOf(db).insertMany(
    assets.map((a) => ({
      _id: statusKey(id, a.id),
      batchId: id,
      customerId,
      assetId: a.id,
      origin: a.origin,
      status: 'waiting' as const,
      error: null,
      finished: null,
      created: now,
      supersededBy: null,
    })),
    { ordered: false },
  );
  // An image's current batch only moves forward: the image is created if missing, then taken over only
  // when its batch is older than ours, so an older batch whose writes land late cannot take it back.
  const current = (a: NewAsset) => ({
    customerId,
    assetId: a.id,
    origin: a.origin,
    batch: id,
    status: 'waiting' as const,
    error: null,
    finished: null,
  });
  await imagesOf(db).bulkWrite(
    assets.map((a) => ({
      updateOne: {
        filter: { _id: imageId(customerId, a.id) },
        update: { $setOnInsert: { ...current(a), created: now } },
        upsert: true,
      },
    })),
    { ordered: false },
  );
  await imagesOf(db).bulkWrite(
    assets.map((a) => ({
      updateOne: {
        filter: { _id: imageId(customerId, a.id), batch: { $lt: id } },
        update: { $set: current(a) },
      },
    })),
    { ordered: false },
  );
  await supersede(
    db,
    customerId,
    assets.map((a) => a.id),
    id,
  );
  return batch;
}

/** How many asset ids one read of supersede() names, and how many rows one bulk write marks. */
const SUPERSEDE_CHUNK = 500;

/**
 * Marks the earlier rows of these assets as superseded by batch `by`. The rows are found by customer and
 * asset alone (an index in that order serves the whole filter) and the earlier, unmarked ones picked
 * here; each is then marked by _id, guarded on still being unmarked, so of two newer batches the first
 * to mark a row keeps it.
 */
async function supersede(db: Db, customerId: string, assetIds: string[], by: number): Promise<void> {
  const affected = new Set<number>();
  for (let i = 0; i < assetIds.length; i += SUPERSEDE_CHUNK) {
    const rows = await rowsOf(db)
      .find(
        { customerId, assetId: { $in: assetIds.slice(i, i + SUPERSEDE_CHUNK) } },
        { projection: { _id: 1, batchId: 1, supersededBy: 1 } },
      )
      .toArray();
    const earlier = rows.filter((r) => r.batchId < by && r.supersededBy === null);
    for (let j = 0; j < earlier.length; j += SUPERSEDE_CHUNK) {
      const chunk = earlier.slice(j, j + SUPERSEDE_CHUNK);
      await rowsOf(db).bulkWrite(
        chunk.map((r) => ({
          updateOne: { filter: { _id: r._id, supersededBy: null }, update: { $set: { supersededBy: by } } },
        })),
        { ordered: false },
      );
      for (const r of chunk) affected.add(r.batchId);
    }
  }
  // Only `superseded` moves here; completed/errors belong to the fold stage's counters. A recount (not
  // an $inc of the rows marked here) so a mark whose count was lost in a crash is counted next time;
  // the index `batch_superseded` answers it from the index alone (batch ids are positive).
  for (const b of affected) {
    const superseded = await rowsOf(db).countDocuments({ batchId: b, supersededBy: { $gte: 1 } });
    await batchesOf(db).updateOne({ _id: b }, { $max: { superseded } });
  }
}

/** Per-status tallies of a batch's rows, for deriveCounts: the recount replay verifies against. */
export async function talliesOf(db: Db, batchId: number): Promise<StatusTally[]> {
  const groups = await rowsOf(db)
    .aggregate<{ _id: AssetStatus; rows: number; superseded: number; lastFinished: Date | null }>([
      { $match: { batchId } },
      {
        $group: {
          _id: '$status',
          rows: { $sum: 1 },
          superseded: { $sum: { $cond: [{ $gt: ['$supersededBy', null] }, 1, 0] } },
          lastFinished: { $max: '$finished' },
        },
      },
    ])
    .toArray();
  return groups.map((g) => ({
    status: g._id,
    rows: g.rows,
    superseded: g.superseded,
    lastFinished: g.lastFinished ? new Date(g.lastFinished).getTime() : null,
  }));
}

/** A batch's counts recomputed from its rows (replay and verification; never the live path). */
export async function recount(db: Db, batchId: number) {
  return deriveCounts(await talliesOf(db, batchId));
}

export function findBatch(db: Db, customerId: string, batchId: number): Promise<BatchDoc | null> {
  return batchesOf(db).findOne({ _id: batchId, customerId });
}

export async function listRows(
  db: Db,
  customerId: string,
  batchId: number,
  status: AssetStatus | undefined,
  page: number,
  pageSize: number,
): Promise<{ items: BatchAssetRow[]; total: number }> {
  const filter = { batchId, customerId, ...(status ? { status } : {}) };
  const [items, total] = await Promise.all([
    rowsOf(db)
      .find(filter)
      .sort({ assetId: 1 })
      .skip((page - 1) * pageSize)
      .limit(pageSize)
      .toArray(),
    rowsOf(db).countDocuments(filter),
  ]);
  return { items, total };
}

export async function failedAssets(db: Db, customerId: string, batchId: number): Promise<NewAsset[]> {
  const rows = await rowsOf(db)
    .find({ batchId, customerId, status: 'error' }, { projection: { assetId: 1, origin: 1 } })
    .sort({ assetId: 1 })
    .toArray();
  return rows.map((r) => ({ id: r.assetId, origin: r.origin }));
}

export function rowsOfImage(db: Db, customerId: string, assetId: string): Promise<BatchAssetRow[]> {
  return rowsOf(db).find({ customerId, assetId }).sort({ batchId: 1 }).toArray();
}

/** The most ids one read of the ops page's listing names. */
const RECENT_WINDOW_MAX = 1000;

/**
 * The latest batches with their progress, newest first, for the ops page. Batch ids come from one
 * counter and only grow, so the latest are found by _id from the counter's value down, a window at a
 * time (an allocated id whose batch was never created leaves a gap; the window widens past gaps).
 */
export async function recentBatchProgress(
  db: Db,
  limit = 20,
): Promise<{ id: string; status: string; total: number; done: number; failed: number }[]> {
  const counter = await db
    .collection<{ _id: string; seq: number }>(COLLECTIONS.counters)
    .findOne({ _id: 'batch' });
  const docs: BatchDoc[] = [];
  let top = counter?.seq ?? 0;
  let window = limit;
  while (docs.length < limit && top > 0) {
    const ids = Array.from({ length: Math.min(window, top) }, (_, i) => top - i);
    const found = await batchesOf(db)
      .find({ _id: { $in: ids } })
      .sort({ _id: -1 })
      .toArray();
    docs.push(...found.slice(0, limit - docs.length));
    top -= ids.length;
    window = Math.min(window * 2, RECENT_WINDOW_MAX);
  }
  return docs.map((b) => ({
    id: String(b._id),
    status: b.finished ? 'finished' : 'running',
    total: b.count,
    done: b.completed + b.errors,
    failed: b.errors,
  }));
}
