// The conversions tables in MongoDB: the event archive (RSLeadConversionEvents, one document per
// distinct event, carrying the change it made) and RSLeadGlobalConversions, always derived from it.
import type { Collection, Db } from 'mongodb';
import type { DeclaredQuery } from '../runtime/dataflow';
import { archive, archiveIndexes, type ArchivedEvent } from '../state/archive';
import type { CollectionIndexes } from '../state/mongo';
import { classify } from '../errors';
import { rowIdOf, type ConversionRow, type RowKey } from './reducer';
import type { ConversionChange, ConversionEvent, ConversionTotals } from './schemas';

export const ROWS = 'RSLeadGlobalConversions';
export const ARCHIVE = 'RSLeadConversionEvents';

/** The archived value: what the reducer needs, and the change the event made when it was first applied. */
export interface ArchivedConversion {
  conversionType: string;
  amount: number | null;
  change: ConversionChange;
}

export type ConversionArchiveDoc = ArchivedEvent<ArchivedConversion>;

export interface RowDoc extends ConversionRow {
  _id: string;
  /** When the row was last set; not compared by replay. */
  updatedAt: number;
}

export const archiveOf = (db: Db) => archive<ArchivedConversion>(db, ARCHIVE);
export const rowsOf = (db: Db): Collection<RowDoc> => db.collection<RowDoc>(ROWS);

export const CONVERSION_INDEXES: CollectionIndexes[] = [
  {
    collection: ARCHIVE,
    indexes: [
      ...archiveIndexes(ARCHIVE).indexes,
      // A row's events: the live recompute after every archived event.
      { key: { entityId: 1, tenantId: 1, 'value.conversionType': 1 }, name: 'entity_tenant_type' },
    ],
  },
  {
    collection: ROWS,
    // A lead's rows (replay, by leadId) and a tenant's lead (the route, sorted by type).
    indexes: [{ key: { leadId: 1, tenantId: 1, conversionType: 1 }, name: 'lead_tenant_type' }],
  },
];

const SAMPLE_ROW = rowIdOf({ tenantId: 't1', leadId: 'l1', conversionType: 'sold' });

/** Every query the dataflow runs, for the index test to explain. */
export const CONVERSION_QUERIES: DeclaredQuery[] = [
  { name: 'conversions.archive.byEventId', collection: ARCHIVE, filter: { _id: 'e1' } },
  {
    name: 'conversions.archive.rowEvents',
    collection: ARCHIVE,
    filter: { entityId: 'l1', tenantId: 't1', 'value.conversionType': 'sold' },
  },
  {
    name: 'conversions.archive.leadEvents',
    collection: ARCHIVE,
    filter: { entityId: 'l1' },
    sort: { occurredAt: 1, _id: 1 },
  },
  {
    name: 'conversions.archive.leadIds',
    collection: ARCHIVE,
    filter: { entityId: { $gt: 'l0' } },
    sort: { entityId: 1 },
  },
  {
    name: 'conversions.archive.tenantTotals',
    collection: ARCHIVE,
    filter: { tenantId: 't1', occurredAt: { $gte: 0, $lt: 1 }, 'value.conversionType': 'sold' },
  },
  { name: 'conversions.rows.byId', collection: ROWS, filter: { _id: SAMPLE_ROW } },
  {
    name: 'conversions.rows.setIfUnchanged',
    collection: ROWS,
    filter: { _id: SAMPLE_ROW, count: 3, amount: 0, firstAt: 0, lastAt: 1 },
  },
  {
    name: 'conversions.rows.repairIfUnchanged',
    collection: ROWS,
    filter: {
      _id: SAMPLE_ROW,
      tenantId: 't1',
      leadId: 'l1',
      conversionType: 'sold',
      count: 3,
      amount: 0,
      firstAt: 0,
      lastAt: 1,
    },
  },
  { name: 'conversions.rows.byLead', collection: ROWS, filter: { leadId: 'l1' } },
  {
    name: 'conversions.rows.byTenantLead',
    collection: ROWS,
    filter: { tenantId: 't1', leadId: 'l1' },
    sort: { conversionType: 1 },
  },
];

export function eventOf(doc: ConversionArchiveDoc): ConversionEvent {
  return {
    eventId: doc._id,
    tenantId: doc.tenantId ?? '',
    leadId: doc.entityId,
    conversionType: doc.value.conversionType,
    occurredAt: doc.occurredAt,
    amount: doc.value.amount,
  };
}

/** The archived events of one row (the recorded changes left out: the reducer needs none of them). */
export async function rowEvents(db: Db, k: RowKey): Promise<ConversionEvent[]> {
  const docs = await archiveOf(db)
    .find({ entityId: k.leadId, tenantId: k.tenantId, 'value.conversionType': k.conversionType } as never, {
      projection: { 'value.change': 0 },
    })
    .toArray();
  return (docs as ConversionArchiveDoc[]).map(eventOf);
}

/** The change recorded with an archived event, or null when the event id is not archived. */
export async function recordedChange(db: Db, eventId: string): Promise<ConversionChange | null> {
  const doc = await archiveOf(db).findOne({ _id: eventId } as never, { projection: { 'value.change': 1 } });
  return (doc as ConversionArchiveDoc | null)?.value.change ?? null;
}

export async function storedTotals(db: Db, k: RowKey): Promise<ConversionTotals | null> {
  const doc = await rowsOf(db).findOne({ _id: rowIdOf(k) });
  return doc ? { count: doc.count, amount: doc.amount, firstAt: doc.firstAt, lastAt: doc.lastAt } : null;
}

const DUPLICATE_KEY = 11000;

/**
 * Sets the row only if it is still as the caller read it (`asRead`, null for "no row"): a compare-and-set.
 * Whoever read the row and then the archive derives a superset of what the row holds (rows are only
 * ever derived from archived events), so a set over an unchanged row never drops an event. A row
 * changed in between (another instance, a repair) answers 'changed'; the caller reads again.
 */
export async function setRowIfUnchanged(
  db: Db,
  row: ConversionRow,
  asRead: ConversionTotals | null,
  now: number,
): Promise<'set' | 'changed'> {
  const _id = rowIdOf(row);
  const fields = { ...row, updatedAt: now };
  try {
    if (asRead === null) {
      await rowsOf(db).insertOne({ _id, ...fields });
      return 'set';
    }
    const res = await rowsOf(db).updateOne({ _id, ...asRead }, { $set: fields });
    return res.matchedCount === 1 ? 'set' : 'changed';
  } catch (err) {
    if ((err as { code?: unknown }).code === DUPLICATE_KEY) return 'changed';
    throw classify(err);
  }
}
