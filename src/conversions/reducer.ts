// The pure semantics of RSLeadGlobalConversions: a row per (tenantId, leadId, conversionType) is a
// function of the SET of its distinct events — count, exact amount, first and last occurrence — so
// adding events one at a time (live) and reducing them all at once (replay) give the same row.
import { KeyflowError } from '../errors';
import { eventKey } from '../state/event-identity';
import type { ConversionEvent, ConversionTotals } from './schemas';

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

/** The archive entry's _id: the event id within its tenant (two tenants may reuse an id). */
export function archiveIdOf(v: Pick<ConversionEvent, 'tenantId' | 'eventId'>): string {
  return eventKey(v.tenantId, v.eventId);
}

/**
 * Amounts are counted in integer millionths (micro-units), so a sum is exact and the same whatever
 * the order events arrive in: live (incremental) and replay (from the archive) agree to the bit. An
 * amount finer than a millionth, or too large to count exactly, is refused rather than rounded.
 */
export function toMicros(amount: number | null): bigint {
  if (amount === null) return 0n;
  const micros = Math.round(amount * 1e6);
  if (!Number.isFinite(amount) || !Number.isSafeInteger(micros) || micros / 1e6 !== amount) {
    throw new KeyflowError(
      'VALIDATION_FAILED',
      `amount ${amount} is not a whole number of millionths below 9e9; send it rounded to 6 decimals`,
      { retriable: false },
    );
  }
  return BigInt(micros);
}

export function amountOf(micros: bigint): number {
  return Number(micros) / 1e6;
}

/** Totals with their exact amount, as the live fold keeps them. */
export interface ExactTotals {
  count: number;
  micros: bigint;
  firstAt: number;
  lastAt: number;
}

export function publicTotals(t: ExactTotals | null): ConversionTotals | null {
  return t === null
    ? null
    : { count: t.count, amount: amountOf(t.micros), firstAt: t.firstAt, lastAt: t.lastAt };
}

/** One more distinct event on a row: order-independent in every field. */
export function addEvent(t: ExactTotals | null, e: ConversionEvent): ExactTotals {
  const micros = toMicros(e.amount);
  if (t === null) return { count: 1, micros, firstAt: e.occurredAt, lastAt: e.occurredAt };
  return {
    count: t.count + 1,
    micros: t.micros + micros,
    firstAt: Math.min(t.firstAt, e.occurredAt),
    lastAt: Math.max(t.lastAt, e.occurredAt),
  };
}

/**
 * Each (tenant, event id) once; of two sends of one the first in the list is kept (arrival order). The
 * same id from two tenants is two events.
 */
export function distinctEvents(events: readonly ConversionEvent[]): ConversionEvent[] {
  const seen = new Set<string>();
  const out: ConversionEvent[] = [];
  for (const e of events) {
    const key = archiveIdOf(e);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  return out;
}

export function exactTotalsOf(events: readonly ConversionEvent[]): ExactTotals | null {
  let t: ExactTotals | null = null;
  for (const e of distinctEvents(events)) t = addEvent(t, e);
  return t;
}

/** Totals of ONE row's distinct events (the caller groups them), or null when there are none. */
export function totalsOf(events: readonly ConversionEvent[]): ConversionTotals | null {
  return publicTotals(exactTotalsOf(events));
}

/** Every row the events make, ordered by tenantId, leadId, conversionType. */
export function reduceConversions(events: readonly ConversionEvent[]): ConversionRow[] {
  const byRow = new Map<string, ConversionEvent[]>();
  // A tenant's event id counts once whatever row a re-send names, as the live stage's archive does
  // (which refuses such a re-send as EVENT_ID_REUSED: only the first send is ever archived).
  for (const e of distinctEvents(events)) {
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
