// The live stage's pure step for one conversion: against what the batch read (the lead's rows and
// the archive entries of the batch's event ids) and what the batch already folded, decide whether
// the event is new (count it, and store its change with the input record that made it), counted by a
// write whose marks were lost (recognise it), a duplicate, or a re-send of its tenant's event id with
// other content (refused as EVENT_ID_REUSED). A counted or recognised event re-sends its stored change
// only when it is that input record come again (src/state/input-position.ts): its first emission never
// became visible. Any other copy emits nothing. O(1) per event: no history is re-read.
import { refuseReusedId } from '../state/event-identity';
import { extend, type Lookup } from '../state/fold-map';
import { positionOf, sameRecord, type InputPosition } from '../state/input-position';
import type { Step, StageEvent } from '../topology/types';
import { addEvent, archiveIdOf, publicTotals, rowIdOf, type ExactTotals, type RowKey } from './reducer';
import type { ConversionChange, ConversionEvent } from './schemas';

/** A row as read, and as folded so far in this batch. */
export interface RowFold {
  key: RowKey;
  /**
   * The row's version as read: 0 when it does not exist, null when it was written before rows had
   * versions. The row write is guarded on it.
   */
  version: number | null;
  /** Event ids the row's last write counted; their archive marks may still be missing. */
  pending: ReadonlySet<string>;
  totals: ExactTotals | null;
  /** The stored row could not be read (STATE_UNREADABLE): an event that would count on it fails. */
  unreadable?: Error;
}

/** An archive entry of one of the batch's (tenant, event id)s. */
export interface ArchivedInfo {
  /** The event as first archived: a re-send must carry the same content. */
  event: ConversionEvent;
  change: ConversionChange;
  /** The input record that counted the event; absent on entries archived before positions were stored. */
  input?: InputPosition;
  /** False between the archive insert and the mark written after the row (see stage.ts). */
  counted: boolean;
}

/**
 * An event handled earlier in this batch: a re-send in the batch is a duplicate that emits nothing (the
 * earlier copy emits, or re-sends, the change).
 */
export interface HandledEvent {
  event: ConversionEvent;
}

/**
 * What one lead key's events see: its rows, the archive entries of its events, and what it handled.
 * `archived` and `handled` are keyed by archiveIdOf (tenant and event id): two tenants may share a
 * lead id and an event id.
 */
export interface LeadState {
  /** Extended in O(1) per event (fold-map.ts): a lead with 10,000 events in a batch stays linear. */
  rows: Lookup<string, RowFold>;
  archived: ReadonlyMap<string, ArchivedInfo>;
  handled: Lookup<string, HandledEvent>;
}

export type ConversionPlan =
  /** A new event: `archive` says whether its archive entry is to be inserted or (crash repair) rewritten. */
  | {
      kind: 'count';
      rowId: string;
      /** The row's version as read: the row write is guarded on it (0: insert the row). */
      version: number | null;
      change: ConversionChange;
      /** The input record counting it: stored with the change, in the archive entry. */
      input: InputPosition;
      after: ExactTotals;
      archive: 'insert' | 'rewrite';
    }
  /** Counted by the row's last write, which died before marking it: only the mark is missing. */
  | { kind: 'recognise'; rowId: string; change: ConversionChange };

export const rowKeyOf = (v: ConversionEvent): RowKey => ({
  tenantId: v.tenantId,
  leadId: v.leadId,
  conversionType: v.conversionType,
});

/** What makes a conversion the event it is, besides its (tenant, event id). */
export const CONTENT_FIELDS = ['leadId', 'conversionType', 'occurredAt', 'amount'] as const;

function handledWith(s: LeadState, id: string, event: ConversionEvent): LeadState['handled'] {
  return extend(s.handled, id, { event });
}

export function foldConversion(
  e: StageEvent<ConversionEvent>,
  s: LeadState,
  output: string,
): Step<LeadState, ConversionPlan> {
  const v = e.value;
  const id = v.eventId;
  const key = archiveIdOf(v);
  const emit = (change: ConversionChange) => [
    { topic: output, key: v.leadId, value: change, occurredAt: change.occurredAt },
  ];
  // A re-send is a duplicate only if it is the same event: other content under the id is refused.
  const seen = s.handled.get(key);
  if (seen) {
    refuseReusedId(v.tenantId, id, seen.event, v, CONTENT_FIELDS);
    return { plan: null, emit: [], outcome: 'duplicate', state: s };
  }
  const archived = s.archived.get(key);
  if (archived) refuseReusedId(v.tenantId, id, archived.event, v, CONTENT_FIELDS);
  // Counted already: only the input record that counted it (come again because its change never
  // became visible) re-sends the stored change; an entry stored without its input re-sends to any copy.
  const resend = archived !== undefined && sameRecord(archived.input, e);
  const stored = (a: ArchivedInfo) =>
    resend ? { emit: emit(a.change), outOfOrder: a.change.outOfOrder } : { emit: [], outOfOrder: false };
  if (archived?.counted) {
    return {
      plan: null,
      ...stored(archived),
      outcome: 'duplicate',
      state: { ...s, handled: handledWith(s, key, v) },
    };
  }
  const rowId = rowIdOf(v);
  const row = s.rows.get(rowId) ?? { key: rowKeyOf(v), version: 0, pending: new Set(), totals: null };
  if (archived && row.pending.has(id)) {
    return {
      plan: { kind: 'recognise', rowId, change: archived.change },
      ...stored(archived),
      outcome: 'duplicate',
      state: { ...s, handled: handledWith(s, key, v) },
    };
  }
  // Only counting needs the row's totals: a duplicate or a recognised event above goes on without them.
  if (row.unreadable) throw row.unreadable;
  const before = row.totals;
  const after = addEvent(before, v);
  const outOfOrder = before !== null && v.occurredAt < before.lastAt;
  const change: ConversionChange = {
    ...row.key,
    eventId: id,
    occurredAt: v.occurredAt,
    outOfOrder,
    before: publicTotals(before),
    after: publicTotals(after)!,
  };
  return {
    plan: {
      kind: 'count',
      rowId,
      version: row.version,
      change,
      input: positionOf(e),
      after,
      archive: archived ? 'rewrite' : 'insert',
    },
    emit: emit(change),
    outOfOrder,
    state: {
      ...s,
      rows: extend(s.rows, rowId, { ...row, totals: after }),
      handled: handledWith(s, key, v),
    },
  };
}
