// Replay of RSLeadGlobalConversions: a lead's rows recomputed from its archived events with the live
// reducer, compared with the table, and repaired only where nothing changed since they were read.
import type { Db } from 'mongodb';
import { KeyflowError } from '../errors';
import { groupByEntity, type ReplayTable, type Row } from '../replay/types';
import {
  eventsByHistory,
  findByIds,
  historyCount,
  prepareHistory,
  sampleEntities,
  touchedEntities,
  walkEntities,
  historiesByIds,
} from '../replay/by-history';
import { writeGuarded, type GuardedWrite } from '../state/bulk';
import { exactTotalsOf, reduceConversions, rowIdOf } from './reducer';
import { ARCHIVE, archiveOf, eventOf, rowsOf, ROWS, type ConversionArchiveDoc, type RowDoc } from './store';

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

/** A lead's archived events and the ids of its rows (listed by the live writes, and derived from events). */
async function leadsOf(db: Db, ids: readonly string[]) {
  const { histories, events } = await eventsByHistory<ConversionArchiveDoc['value']>(db, ARCHIVE, ids);
  const rowIds = new Map<string, Set<string>>();
  for (const id of ids) {
    const docs = events.get(id)!;
    const set = new Set(histories.get(id)?.rows ?? []);
    for (const d of docs) set.add(rowIdOf(eventOf(d as ConversionArchiveDoc)));
    rowIds.set(id, set);
  }
  return { events: events as Map<string, ConversionArchiveDoc[]>, rowIds };
}

const expectedOf = (docs: readonly ConversionArchiveDoc[]): Row[] =>
  reduceConversions(docs.map(eventOf)).map((r) => ({ _id: rowIdOf(r), ...r }));

async function rowsByIds(db: Db, rowIds: Map<string, Set<string>>): Promise<Map<string, Row[]>> {
  const all = [...rowIds.values()].flatMap((s) => [...s]);
  const docs = await findByIds(rowsOf(db), all);
  return groupByEntity([...rowIds.keys()], docs.map(compared), (r) => String(r.leadId));
}

export const conversionsReplay: ReplayTable = {
  table: ROWS,
  kind: 'derived',
  entity: 'leadId',
  fields: FIELDS,

  // Every read goes through the lead's history by _id (state/entity-history.ts).
  async expected(db: Db, leadId: string): Promise<Row[]> {
    return (await this.expectedMany!(db, [leadId])).get(leadId)!;
  },

  async actual(db: Db, leadId: string): Promise<Row[]> {
    return (await this.actualMany!(db, [leadId])).get(leadId)!;
  },

  async expectedMany(db: Db, ids: readonly string[]): Promise<Map<string, Row[]>> {
    const { events } = await leadsOf(db, ids);
    return new Map([...events].map(([id, docs]) => [id, expectedOf(docs)]));
  },

  // The history lists every row id a live write or the history build made: no archive read needed.
  async actualMany(db: Db, ids: readonly string[]): Promise<Map<string, Row[]>> {
    const histories = await historiesByIds(db, ARCHIVE, ids);
    const rowIds = new Map(ids.map((id) => [id, new Set<string>()]));
    for (const h of histories) for (const r of h.rows ?? []) rowIds.get(h._id)?.add(r);
    return rowsByIds(db, rowIds);
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
    const docs = (await leadsOf(db, [leadId])).events.get(leadId)!;
    const events = docs.map(eventOf);
    const current = expectedOf(docs);
    if (JSON.stringify(current) !== JSON.stringify(expected)) throw conflict(leadId, null, 'archive grew');
    const rows = rowsOf(db);
    const actualById = new Map(actual.map((r) => [String(r._id), r]));
    const expectedIds = new Set(expected.map((r) => String(r._id)));
    const unmarked = docs.filter((d) => d.counted === false);
    const at = Date.now();
    const writes: GuardedWrite<RowDoc>[] = [];
    for (const want of expected) {
      const id = String(want._id);
      const have = actualById.get(id);
      const ofRow = events.filter((e) => rowIdOf(e) === id);
      const fields = {
        ...Object.fromEntries(FIELDS.map((f) => [f, want[f]])),
        amountMicros: exactTotalsOf(ofRow)!.micros.toString(),
        // A row's `pending` lists bare event ids: the row is one tenant's, so they cannot collide.
        pending: unmarked
          .map(eventOf)
          .filter((e) => rowIdOf(e) === id)
          .map((e) => e.eventId),
      };
      if (have === undefined) {
        writes.push({
          index: writes.length,
          _id: id,
          insert: { _id: id, ...fields, version: 1, updatedAt: at } as never,
        });
        continue;
      }
      if (FIELDS.every((f) => have[f] === want[f])) continue;
      const guard = await asRead(rows, have);
      if (guard === null) throw conflict(leadId, want._id, 'row changed');
      const { _id: _guarded, ...rest } = guard;
      writes.push({
        index: writes.length,
        _id: id,
        guard: rest as never,
        update: { $set: { ...fields, updatedAt: at }, $inc: { version: 1 } } as never,
      });
    }
    // One guarded bulk write (state/bulk.ts): a row inserted or changed meanwhile fails as a concurrent update.
    const [failed] = await writeGuarded(rows, writes, `${ROWS} row of lead ${leadId} (repair)`);
    if (failed) throw failed.error;
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

  async entityIds(db: Db, after: string | undefined, batch: number) {
    const ids: string[] = [];
    for await (const id of walkEntities(db, ARCHIVE, after, undefined)) {
      ids.push(id);
      if (ids.length >= batch) break;
    }
    return ids;
  },
  walkIds: (db, after, to) => walkEntities(db, ARCHIVE, after, to),
  touchedIds: (db, since) => touchedEntities(db, ARCHIVE, since),
  sampleIds: (db, n) => sampleEntities(db, ARCHIVE, n),
  estimateEntities: (db) => historyCount(db, ARCHIVE),
  async prepare(db) {
    await prepareHistory(db, ARCHIVE, (d) => rowIdOf(eventOf(d as unknown as ConversionArchiveDoc)));
  },
};
