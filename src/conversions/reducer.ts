// The pure semantics of RSLeadGlobalConversions: a row per (tenantId, leadId, conversionType) is a
// function of the SET of its distinct events. The live stage and replay both call these, nothing else.
import type { ConversionChange, ConversionEvent, ConversionTotals } from './schemas';

export interface RowKey {
  tenantId: string;
  leadId: string;
  conversionType: string;
}

export type ConversionRow = RowKey & ConversionTotals;

/** The row's _id: JSON of the three parts, so no id can be confused with another whatever it contains. */
export function rowIdOf(k: RowKey): string {
  return JSON.stringify([k.tenantId, k.leadId, k.conversionType]);
}

/** The reducers' order: occurredAt, ties by eventId. Summing amounts in it makes the sum bit-exact. */
function canonical(a: ConversionEvent, b: ConversionEvent): number {
  if (a.occurredAt !== b.occurredAt) return a.occurredAt - b.occurredAt;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

/** Each event id once, in canonical order; of two sends of one id the canonically first is kept. */
export function distinctEvents(events: readonly ConversionEvent[]): ConversionEvent[] {
  const seen = new Set<string>();
  const out: ConversionEvent[] = [];
  for (const e of [...events].sort(canonical)) {
    if (seen.has(e.eventId)) continue;
    seen.add(e.eventId);
    out.push(e);
  }
  return out;
}

/**
 * Totals of ONE row's events (the caller groups them), or null when there are none. Floating-point
 * addition is not associative, so the amounts are added in canonical order: any arrival order of the
 * same events gives the same bits, which an $inc per arrival would not.
 */
export function totalsOf(events: readonly ConversionEvent[]): ConversionTotals | null {
  const distinct = distinctEvents(events);
  const first = distinct[0];
  if (first === undefined) return null;
  let amount = 0;
  for (const e of distinct) amount += e.amount ?? 0;
  return {
    count: distinct.length,
    amount,
    firstAt: first.occurredAt,
    lastAt: distinct[distinct.length - 1]!.occurredAt,
  };
}

/** Every row the events make, ordered by tenantId, leadId, conversionType. */
export function reduceConversions(events: readonly ConversionEvent[]): ConversionRow[] {
  const byRow = new Map<string, ConversionEvent[]>();
  for (const e of events) {
    const id = rowIdOf(e);
    let list = byRow.get(id);
    if (!list) byRow.set(id, (list = []));
    list.push(e);
  }
  return [...byRow.keys()].sort().map((id) => {
    const list = byRow.get(id)!;
    const { tenantId, leadId, conversionType } = list[0]!;
    return { tenantId, leadId, conversionType, ...totalsOf(list)! };
  });
}

export function sameTotals(a: ConversionTotals | null, b: ConversionTotals | null): boolean {
  if (a === null || b === null) return a === b;
  return a.count === b.count && a.amount === b.amount && a.firstAt === b.firstAt && a.lastAt === b.lastAt;
}

/** What the stage read for one event. */
export interface ConversionState {
  /** The change recorded when this event id was first archived; null when it is new. */
  recorded: ConversionChange | null;
  /** The archived events of the event's row (they include this event when it is already archived). */
  rowEvents: ConversionEvent[];
  /** The row's totals as stored, read BEFORE the archive; null when there is no row. */
  stored: ConversionTotals | null;
}

export interface ConversionPlan {
  row: RowKey;
  /** The change to archive with the event; null when the event is archived already (a duplicate). */
  archive: ConversionChange | null;
  /** The row the archived events give, this one included. */
  after: ConversionTotals;
  /** The row as read; the write sets `after` only over an unchanged row (see store.ts). */
  asRead: ConversionTotals | null;
  /** Whether the row must be (re)written: always for a new event, for a duplicate only if it lags. */
  setRow: boolean;
}

export interface ConversionOutcome {
  plan: ConversionPlan;
  /** The one change record to emit: the recorded one again for a duplicate, so a redelivery re-emits it. */
  change: ConversionChange;
  outOfOrder: boolean;
}

/** The pure decision for one conversion: the row it leads to and its one change record. */
export function applyConversion(event: ConversionEvent, state: ConversionState): ConversionOutcome {
  const row: RowKey = {
    tenantId: event.tenantId,
    leadId: event.leadId,
    conversionType: event.conversionType,
  };
  if (state.recorded !== null) {
    // A redelivery or an upstream re-send: the archive already counts it. The row is re-derived only
    // when it lags the archive, which means a run died between archiving the event and setting the row.
    const after = totalsOf(state.rowEvents) ?? state.recorded.after;
    return {
      plan: { row, archive: null, after, asRead: state.stored, setRow: !sameTotals(state.stored, after) },
      change: state.recorded,
      outOfOrder: state.recorded.outOfOrder,
    };
  }
  const others = state.rowEvents.filter((e) => e.eventId !== event.eventId);
  const before = totalsOf(others);
  const after = totalsOf([...others, event])!;
  const outOfOrder = before !== null && event.occurredAt < before.lastAt;
  const change: ConversionChange = {
    ...row,
    eventId: event.eventId,
    occurredAt: event.occurredAt,
    outOfOrder,
    before,
    after,
  };
  return { plan: { row, archive: change, after, asRead: state.stored, setRow: true }, change, outOfOrder };
}
