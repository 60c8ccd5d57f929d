// Replay of RSLeadGlobalConversions: a lead's rows recomputed from its archived events with the live
// reducer, compared with the table, and repaired only where nothing changed since they were read.
import type { Db } from 'mongodb';
import { classify, KeyflowError } from '../errors';
import { groupByEntity, type ReplayTable, type Row } from '../replay/types';
import { entityIdsAfter, eventsOf, eventsOfMany } from '../state/archive';
import { exactTotalsOf, reduceConversions, rowIdOf } from './reducer';
import { archiveOf, eventOf, rowsOf, ROWS, type ConversionArchiveDoc, type RowDoc } from './store';
import { isDuplicateKey } from '../state/conflicts';

const FIELDS = ['tenantId', 'leadId', 'conversionType', 'count', 'amount', 'firstAt', 'lastAt'];

function conflict(leadId: string, row: unknown, what: string): KeyflowError {
  return new KeyflowError(
    'HANDLER_TRANSIENT',
    `repair of ${ROWS} for lead ${leadId} lost a race with the live stage (${what}); run it again`,
    { details: { leadId, row } },
  );
}

/**
 * The filter "this row is still exactly as replay read it". The row is read again by _id: if it still
 * holds what replay compared, its version (bumped by every write) guards the write; a row written before
 * versions existed is guarded on every compared field (absent stays absent).
 */
async function asRead(rows: ReturnType<typeof rowsOf>, actual: Row): Promise<Record<string, unknown> | null> {
  const now = await rows.findOne({ _id: String(actual._id) });
  if (!now || FIELDS.some((f) => (now as Record<string, unknown>)[f] !== actual[f])) return null;
  if (typeof now.version === 'number') return { _id: actual._id, version: now.version };
  const filter: Record<string, unknown> = { _id: actual._id };
  for (const f of FIELDS) filter[f] = actual[f] ?? { $exists: false };
  return filter;
}

function compared(doc: RowDoc): Row {
  const { _id, tenantId, leadId, conversionType, count, amount, firstAt, lastAt } = doc;
  return { _id, tenantId, leadId, conversionType, count, amount, firstAt, lastAt };
}

export const conversionsReplay: ReplayTable = {
  table: ROWS,
  kind: 'derived',
  entity: 'leadId',
  fields: FIELDS,

  async expected(db: Db, leadId: string): Promise<Row[]> {
    const events = (await eventsOf(archiveOf(db), leadId)).map(eventOf);
    return reduceConversions(events).map((r) => ({ _id: rowIdOf(r), ...r }));
  },

  async actual(db: Db, leadId: string): Promise<Row[]> {
    return (await rowsOf(db).find({ leadId }).toArray()).map(compared);
  },

  async expectedMany(db: Db, ids: readonly string[]): Promise<Map<string, Row[]>> {
    const byId = groupByEntity(ids, await eventsOfMany(archiveOf(db), ids), (a) => a.entityId);
    return new Map(
      [...byId].map(([id, list]) => [
        id,
        reduceConversions(list.map(eventOf)).map((r) => ({ _id: rowIdOf(r), ...r })),
      ]),
    );
  },

  async actualMany(db: Db, ids: readonly string[]): Promise<Map<string, Row[]>> {
    const docs = await rowsOf(db)
      .find({ leadId: { $in: [...ids] } })
      .toArray();
    return groupByEntity(ids, docs.map(compared), (r) => String(r.leadId));
  },

  // Every write is conditional on the row being as read: a live write in between (which derives from
  // a newer archive) makes the condition miss, and the caller retries on HANDLER_TRANSIENT. The
  // archive is re-read first: had it grown since `expected` was computed, a row read after that
  // growth may hold an event `expected` lacks, and setting `expected` over it would drop the event.
  //
  // The repaired row counts every archived event, those the live stage has not marked counted yet
  // among them (a crash tail): it lists them in `pending` and marks them after, exactly as the live
  // write does, so the redelivery of that tail recognises them instead of counting them again.
  async repair(db: Db, leadId: string, expected: Row[], actual: Row[]): Promise<void> {
    const docs = (await eventsOf(archiveOf(db), leadId)) as ConversionArchiveDoc[];
    const events = docs.map(eventOf);
    const current = reduceConversions(events).map((r) => ({ _id: rowIdOf(r), ...r }));
    if (JSON.stringify(current) !== JSON.stringify(expected)) throw conflict(leadId, null, 'archive grew');
    const rows = rowsOf(db);
    const actualById = new Map(actual.map((r) => [String(r._id), r]));
    const expectedIds = new Set(expected.map((r) => String(r._id)));
    const unmarked = docs.filter((d) => d.counted === false);
    const at = Date.now();
    for (const want of expected) {
      const have = actualById.get(String(want._id));
      const ofRow = events.filter((e) => rowIdOf(e) === String(want._id));
      const fields = {
        ...Object.fromEntries(FIELDS.map((f) => [f, want[f]])),
        amountMicros: exactTotalsOf(ofRow)!.micros.toString(),
        // A row's `pending` lists bare event ids: the row is one tenant's, so they cannot collide.
        pending: unmarked
          .map(eventOf)
          .filter((e) => rowIdOf(e) === String(want._id))
          .map((e) => e.eventId),
      };
      if (have === undefined) {
        try {
          await rows.insertOne({ _id: String(want._id), ...fields, version: 1, updatedAt: at } as never);
        } catch (err) {
          if (isDuplicateKey(err)) throw conflict(leadId, want._id, 'row appeared');
          throw classify(err);
        }
        continue;
      }
      if (FIELDS.every((f) => have[f] === want[f])) continue;
      const guard = await asRead(rows, have);
      if (guard === null) throw conflict(leadId, want._id, 'row changed');
      const res = await rows.updateOne(guard as never, {
        $set: { ...fields, updatedAt: at },
        $inc: { version: 1 },
      });
      if (res.matchedCount !== 1) throw conflict(leadId, want._id, 'row changed');
    }
    if (unmarked.length > 0) {
      await archiveOf(db).updateMany({ _id: { $in: unmarked.map((d) => d._id) } } as never, {
        $set: { counted: true } as never,
      });
    }
    for (const have of actual) {
      if (expectedIds.has(String(have._id))) continue;
      const guard = await asRead(rows, have);
      if (guard === null) throw conflict(leadId, have._id, 'row changed before removal');
      const res = await rows.deleteOne(guard as never);
      if (res.deletedCount !== 1) throw conflict(leadId, have._id, 'row changed before removal');
    }
  },

  entityIds: (db: Db, after: string | undefined, batch: number) =>
    entityIdsAfter(archiveOf(db), after, batch),
};
