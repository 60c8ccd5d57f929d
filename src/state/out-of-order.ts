// Out-of-order deliveries, kept apart from the rest of provenance: the provenance recorder writes each
// out-of-order record here as well (same _id, same document), so the /ops report reads only these, and
// its cost follows how many events came out of order, not how many deliveries were ever recorded. On a
// server without secondary indexes (mongo-java-server) the report scanned all provenance: 6.5 s cold
// on a stack holding 100,000 archived conversions, long enough to leave /ops panels loading.
import type { Db } from 'mongodb';
import type { Logger } from '../logger';
import type { CollectionIndexes } from './mongo';
import { classify } from '../errors';

export const OUT_OF_ORDER_COLLECTION = 'keyflow_out_of_order';

export const OUT_OF_ORDER_INDEXES: CollectionIndexes = {
  collection: OUT_OF_ORDER_COLLECTION,
  indexes: [
    { key: { outOfOrder: 1, consumedAt: -1 }, name: 'newest' },
    { key: { expireAt: 1 }, name: 'expire', expireAfterSeconds: 0 },
  ],
};

/** What the report reads of a record (a ProvenanceRecord with `outOfOrder: true`). */
export interface OutOfOrderRecord {
  _id: string;
  stage: string;
  key: string;
  eventId: string;
  tenantId?: string;
  topic: string;
  partition: number;
  offset: string;
  occurredAt?: number;
  consumedAt: number;
  outcome: string;
  outOfOrder: true;
  expireAt?: Date;
}

/** Marks a store whose earlier out-of-order provenance has been copied here (it has no `outOfOrder`). */
const COPIED = 'copied-from-provenance';
const COPY_BATCH = 500;

const outOfOrder = (db: Db) => db.collection<OutOfOrderRecord>(OUT_OF_ORDER_COLLECTION);

/** Keeps these records beside their provenance: replaces by _id, so writing them again is safe. */
export async function writeOutOfOrder(db: Db, docs: readonly OutOfOrderRecord[]): Promise<void> {
  if (docs.length === 0) return;
  const writes = docs.map((doc) => ({
    replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true },
  }));
  await outOfOrder(db).bulkWrite(writes, { ordered: false });
}

export async function sweepOutOfOrder(db: Db, now: Date): Promise<number> {
  return (await outOfOrder(db).deleteMany({ expireAt: { $lt: now } })).deletedCount;
}

/** Says this store's earlier out-of-order provenance is here (or that it never had any). */
export async function markCopied(db: Db): Promise<void> {
  await outOfOrder(db).updateOne(
    { _id: COPIED },
    { $set: { copiedAt: new Date() } as never },
    { upsert: true },
  );
}

/**
 * Copies out-of-order records written before this collection existed, once per store: one read of
 * provenance (a scan where the server has no index), in the background of a processor's start, then
 * the mark. Upserts by _id, so a copy cut short, or racing the recorder, is simply done again.
 */
export async function copyOutOfOrder(
  db: Db,
  provenance: string,
  opts: { log: Logger; stopped: () => boolean },
): Promise<number> {
  const coll = outOfOrder(db);
  if ((await coll.findOne({ _id: COPIED })) !== null) return 0;
  const cursor = db.collection<OutOfOrderRecord>(provenance).find({ outOfOrder: true }).batchSize(COPY_BATCH);
  let copied = 0;
  let pending: OutOfOrderRecord[] = [];
  try {
    for await (const doc of cursor) {
      if (opts.stopped()) return copied;
      pending.push(doc);
      if (pending.length >= COPY_BATCH) {
        await writeOutOfOrder(db, pending);
        copied += pending.length;
        pending = [];
      }
    }
  } finally {
    await cursor.close().catch(() => undefined);
  }
  await writeOutOfOrder(db, pending);
  copied += pending.length;
  await markCopied(db);
  if (copied > 0) opts.log.info({ copied }, 'out-of-order records copied from provenance for the ops report');
  return copied;
}

/** copyOutOfOrder for a starting processor: never throws, logs a failure (the next start copies again). */
export function copyOutOfOrderInBackground(
  db: Db,
  provenance: string,
  opts: { log: Logger; stopped: () => boolean },
): Promise<void> {
  return copyOutOfOrder(db, provenance, opts).then(
    () => undefined,
    (err) => {
      if (opts.stopped()) return;
      const e = classify(err);
      opts.log.warn(
        { err: e, code: e.code },
        'out-of-order records from provenance not copied; the next start tries again',
      );
    },
  );
}

/**
 * The out-of-order report. An event is "corrected" when some attempt of the stage still applied it (its
 * reducer folds a late event into the right place); otherwise it was skipped as superseded. Events are
 * counted once however often they were delivered; `outcomes` counts attempts.
 */
export async function outOfOrderReport(db: Db, stage: string | undefined, limit: number) {
  const filter: Record<string, unknown> = { outOfOrder: true };
  if (stage !== undefined) filter.stage = stage;
  const coll = outOfOrder(db);
  const [events, attempts, records] = await Promise.all([
    coll
      .aggregate<{ _id: string; detected: number; corrected: number }>([
        { $match: filter },
        {
          $group: {
            _id: { stage: '$stage', eventId: '$eventId' },
            applied: { $max: { $cond: [{ $eq: ['$outcome', 'applied'] }, 1, 0] } },
          },
        },
        { $group: { _id: '$_id.stage', detected: { $sum: 1 }, corrected: { $sum: '$applied' } } },
      ])
      .toArray(),
    coll
      .aggregate<{ _id: { stage: string; outcome: string }; n: number }>([
        { $match: filter },
        { $group: { _id: { stage: '$stage', outcome: '$outcome' }, n: { $sum: 1 } } },
      ])
      .toArray(),
    coll.find(filter).sort({ consumedAt: -1 }).limit(limit).toArray(),
  ]);
  const byStage = new Map<
    string,
    { stage: string; detected: number; corrected: number; outcomes: Record<string, number> }
  >();
  for (const e of events) {
    byStage.set(e._id, { stage: e._id, detected: e.detected, corrected: e.corrected, outcomes: {} });
  }
  for (const r of attempts) {
    const s = byStage.get(r._id.stage);
    if (s) s.outcomes[r._id.outcome] = r.n;
  }
  return {
    stages: [...byStage.values()].sort((a, b) => a.stage.localeCompare(b.stage)),
    records: records.map((r) => ({
      stage: r.stage,
      key: r.key,
      eventId: r.eventId,
      tenantId: r.tenantId ?? null,
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      occurredAt: r.occurredAt ?? null,
      consumedAt: r.consumedAt,
      outcome: r.outcome,
    })),
  };
}
