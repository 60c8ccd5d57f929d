// The live stage's pure step for one conversion: against what the batch read (the lead's rows and
// the archive entries of the batch's event ids) and what the batch already folded, decide whether
// the event is new (count it), counted by a write whose marks were lost (recognise it), or a
// duplicate (re-emit its recorded change). O(1) per event: no history is re-read.
import type { Step, StageEvent } from '../topology/types';
import { addEvent, publicTotals, rowIdOf, type ExactTotals, type RowKey } from './reducer';
import type { ConversionChange, ConversionEvent } from './schemas';

/** A row as read, and as folded so far in this batch. */
export interface RowFold {
  key: RowKey;
  /** The row's version as read; 0 when it does not exist. The row write is guarded on it. */
  version: number;
  /** Event ids the row's last write counted; their archive marks may still be missing. */
  pending: ReadonlySet<string>;
  totals: ExactTotals | null;
}

/** An archive entry of one of the batch's event ids. */
export interface ArchivedInfo {
  change: ConversionChange;
  /** False between the archive insert and the mark written after the row (see stage.ts). */
  counted: boolean;
}

/** What one lead's events see: its rows, the archive entries of its event ids, and what it handled. */
export interface LeadState {
  rows: ReadonlyMap<string, RowFold>;
  archived: ReadonlyMap<string, ArchivedInfo>;
  /** Event ids handled earlier in this batch, with their change: a re-send in the batch is a duplicate. */
  handled: ReadonlyMap<string, ConversionChange>;
}

export type ConversionPlan =
  /** A new event: `archive` says whether its archive entry is to be inserted or (crash repair) rewritten. */
  | {
      kind: 'count';
      rowId: string;
      /** The row's version as read: the row write is guarded on it (0: insert the row). */
      version: number;
      change: ConversionChange;
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

function handledWith(s: LeadState, id: string, change: ConversionChange): LeadState['handled'] {
  return new Map(s.handled).set(id, change);
}

export function foldConversion(
  e: StageEvent<ConversionEvent>,
  s: LeadState,
  output: string,
): Step<LeadState, ConversionPlan> {
  const v = e.value;
  const id = v.eventId;
  const emit = (change: ConversionChange) => [
    { topic: output, key: v.leadId, value: change, occurredAt: change.occurredAt },
  ];
  const seen = s.handled.get(id);
  if (seen) return { plan: null, emit: emit(seen), outcome: 'duplicate', state: s };
  const archived = s.archived.get(id);
  if (archived?.counted) {
    return {
      plan: null,
      emit: emit(archived.change),
      outcome: 'duplicate',
      outOfOrder: archived.change.outOfOrder,
      state: { ...s, handled: handledWith(s, id, archived.change) },
    };
  }
  const rowId = rowIdOf(v);
  const row = s.rows.get(rowId) ?? { key: rowKeyOf(v), version: 0, pending: new Set(), totals: null };
  if (archived && row.pending.has(id)) {
    return {
      plan: { kind: 'recognise', rowId, change: archived.change },
      emit: emit(archived.change),
      outcome: 'duplicate',
      outOfOrder: archived.change.outOfOrder,
      state: { ...s, handled: handledWith(s, id, archived.change) },
    };
  }
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
      after,
      archive: archived ? 'rewrite' : 'insert',
    },
    emit: emit(change),
    outOfOrder,
    state: {
      ...s,
      rows: new Map(s.rows).set(rowId, { ...row, totals: after }),
      handled: handledWith(s, id, change),
    },
  };
}
