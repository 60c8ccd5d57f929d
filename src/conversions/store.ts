// The conversions tables in MongoDB: the event archive (RSLeadConversionEvents, one document per
// distinct (tenant, event id), carrying the change it made) and RSLeadGlobalConversions, always derived from it.
import type { Collection, Db } from 'mongodb';
import type { DeclaredQuery } from '../runtime/dataflow';
import { archive, archivedEventId, archiveIndexes, type ArchivedEvent } from '../state/archive';
import { guardIndex } from '../state/bulk';
import { historyIndexes, historyQueries } from '../state/entity-history';
import type { InputPosition } from '../state/input-position';
import type { CollectionIndexes } from '../state/mongo';
import { KeyflowError } from '../errors';
import { archiveIdOf, rowIdOf, type ConversionRow, type ExactTotals } from './reducer';
import type { ConversionChange, ConversionEvent } from './schemas';

export const ROWS = 'RSLeadGlobalConversions';
export const ARCHIVE = 'RSLeadConversionEvents';

/**
 * The archived value: what the reducer needs, the change the event made when it was counted, and the
 * input record that counted it (the only one that re-sends the change).
 */
export interface ArchivedConversion {
  conversionType: string;
  amount: number | null;
  change: ConversionChange;
  /** Absent on entries archived before it was stored: any copy of their event re-sends the change. */
  input?: InputPosition;
}

export type ConversionArchiveDoc = ArchivedEvent<ArchivedConversion> & {
  /**
   * false from the archive insert until the row that counts the event is written; absent on entries
   * archived before the mark existed, which were all counted.
   */
  counted?: boolean;
};

export interface RowDoc extends ConversionRow {
  _id: string;
  /** The exact sum in millionths, as a decimal string (amount is derived from it). */
  amountMicros?: string;
  /** Bumped by every write; the live stage's writes are guarded on the version they read. */
  version?: number;
  /** The event ids the last write counted: their archive entries may not be marked yet. */
  pending?: string[];
  /** When the row was last set; not compared by replay. */
  updatedAt: number;
}

export const archiveOf = (db: Db) => archive<ArchivedConversion>(db, ARCHIVE);
export const rowsOf = (db: Db): Collection<RowDoc> => db.collection<RowDoc>(ROWS);

export const CONVERSION_INDEXES: CollectionIndexes[] = [
  {
    collection: ARCHIVE,
    // The live stage reads the archive by _id only; these serve replay and reports.
    indexes: [
      ...archiveIndexes(ARCHIVE).indexes,
      // The live stage's re-count of an entry archived but never counted, guarded on counted:false.
      guardIndex('counted'),
      // A tenant's totals per type over a time range (the route): equalities, then the range.
      { key: { tenantId: 1, 'value.conversionType': 1, occurredAt: 1 }, name: 'tenant_type_occurred' },
    ],
  },
  historyIndexes(ARCHIVE),
  {
    collection: ROWS,
    // A lead's rows (replay, by leadId) and a tenant's lead (the route, sorted by type); the live
    // stage's guarded write.
    indexes: [
      { key: { leadId: 1, tenantId: 1, conversionType: 1 }, name: 'lead_tenant_type' },
      guardIndex('version'),
    ],
  },
];

const SAMPLE_ROW = rowIdOf({ tenantId: 't1', leadId: 'l1', conversionType: 'sold' });

/** Every query the dataflow runs, for the index test to explain. */
export const CONVERSION_QUERIES: DeclaredQuery[] = [
  {
    name: 'conversions.archive.byEventIds',
    hot: true,
    collection: ARCHIVE,
    filter: { _id: { $in: [archiveIdOf({ tenantId: 't1', eventId: 'e1' })] } },
  },
  ...historyQueries('conversions', ARCHIVE, 'l1'),
  {
    // An entry archived but never counted, counted again by the record now carrying it (stage.ts step 1).
    name: 'conversions.archive.rewriteUncounted',
    hot: true,
    collection: ARCHIVE,
    filter: { _id: archiveIdOf({ tenantId: 't1', eventId: 'e1' }), counted: false },
  },
  {
    name: 'conversions.archive.byHistory (replay)',
    collection: ARCHIVE,
    filter: { _id: { $in: [archiveIdOf({ tenantId: 't1', eventId: 'e1' })] } },
  },
  {
    name: 'conversions.archive.tenantTotals',
    collection: ARCHIVE,
    filter: { tenantId: 't1', occurredAt: { $gte: 0, $lt: 1 }, 'value.conversionType': 'sold' },
  },
  { name: 'conversions.rows.byIds', hot: true, collection: ROWS, filter: { _id: { $in: [SAMPLE_ROW] } } },
  {
    name: 'conversions.rows.guardedWrite',
    hot: true,
    collection: ROWS,
    filter: { _id: SAMPLE_ROW, version: 3 },
  },
  {
    // A row written before rows had versions: its first write since is guarded on having none.
    name: 'conversions.rows.guardedWriteUnversioned',
    hot: true,
    collection: ROWS,
    filter: { _id: SAMPLE_ROW, version: null },
  },
  {
    name: 'conversions.rows.repairIfUnchanged',
    collection: ROWS,
    filter: { _id: SAMPLE_ROW, version: 4 },
  },
  { name: 'conversions.rows.byHistory (replay)', collection: ROWS, filter: { _id: { $in: [SAMPLE_ROW] } } },
  {
    name: 'conversions.rows.byTenantLead',
    collection: ROWS,
    filter: { tenantId: 't1', leadId: 'l1' },
    sort: { conversionType: 1 },
  },
];

export function eventOf(doc: ConversionArchiveDoc): ConversionEvent {
  return {
    eventId: archivedEventId(doc),
    tenantId: doc.tenantId ?? '',
    leadId: doc.entityId,
    conversionType: doc.value.conversionType,
    occurredAt: doc.occurredAt,
    amount: doc.value.amount,
  };
}

/**
 * The exact amount of a row written before amountMicros existed, from its float `amount`: a float sum
 * of `count` amounts in whole millionths lies within a few rounding errors per addend of a whole
 * number of millionths (0.1 + 0.2 is 0.30000000000000004), and that number is the exact sum. A value
 * further off than that (never more than a tenth of a millionth) was not such a sum: undefined.
 */
export function microsOfFloatSum(amount: number, count: number): bigint | undefined {
  if (typeof amount !== 'number' || !Number.isFinite(amount)) return undefined;
  const scaled = amount * 1e6;
  const micros = Math.round(scaled);
  if (!Number.isSafeInteger(micros)) return undefined;
  const tolerance = Math.min(0.1, 4 * Math.max(count, 1) * Number.EPSILON * Math.abs(scaled));
  return Math.abs(scaled - micros) <= tolerance ? BigInt(micros) : undefined;
}

/**
 * A stored row's totals with their exact amount. A row written before amountMicros existed derives it
 * from its float amount (microsOfFloatSum); the stage's next write of the row stores it. A row that
 * cannot be read either way is STATE_UNREADABLE: the caller fails only the events of that row.
 */
export function exactOf(doc: RowDoc): ExactTotals {
  const micros =
    doc.amountMicros !== undefined
      ? /^-?\d+$/.test(doc.amountMicros)
        ? BigInt(doc.amountMicros)
        : undefined
      : microsOfFloatSum(doc.amount, doc.count);
  if (micros === undefined || !Number.isInteger(doc.count) || doc.count < 0) {
    throw new KeyflowError(
      'STATE_UNREADABLE',
      `${ROWS} row ${doc._id} cannot be read: amount ${String(doc.amount)}, amountMicros ` +
        `${String(doc.amountMicros)}, count ${String(doc.count)} are not an exact sum; repair it with replay`,
      { details: { row: doc._id } },
    );
  }
  return { count: doc.count, micros, firstAt: doc.firstAt, lastAt: doc.lastAt };
}
