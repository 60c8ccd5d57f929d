// What an executor says of each event it was given: one outcome object per event, in the order the
// events came, so the runner settles, retries or dead-letters from it alone.
import { classify, type KeyflowError } from '../errors';
import { EVENTS, type HandledEvent, type Instrumentation } from '../instrumentation';
import { HEADERS } from '../producers/headers';
import type { EffectOutcome, OutRecord } from '../topology/types';
import type { InFlight } from './envelope';

export interface StepTimings {
  readStartedAt?: number;
  decideStartedAt?: number;
  writeStartedAt?: number;
}

export type EventOutcome =
  | { kind: 'done'; outcome: EffectOutcome; emit: OutRecord[]; outOfOrder: boolean; t: StepTimings }
  | { kind: 'failed'; error: KeyflowError; t: StepTimings }
  /** Not attempted, or its effects not confirmed, because an earlier event of its key failed. */
  | { kind: 'held' };

export const failed = (err: unknown, t: StepTimings = {}): EventOutcome => ({
  kind: 'failed',
  error: classify(err),
  t,
});

export const HELD: EventOutcome = { kind: 'held' };

/**
 * Per-key order: once an event of a key failed, every later event of that key in the same run is
 * held, whatever the executor made of it (its effects are idempotent and will be redone after).
 */
export function holdAfterFailures(keys: readonly string[], outcomes: EventOutcome[]): EventOutcome[] {
  const stopped = new Set<string>();
  return outcomes.map((o, i) => {
    const key = keys[i]!;
    if (stopped.has(key)) return HELD;
    if (o.kind !== 'done') stopped.add(key);
    return o;
  });
}

/** One event's outcome, reported once (EVENT_HANDLED) when it is settled. */
export interface HandledReport {
  stage: string;
  topic: string;
  partition: number;
  item: InFlight;
  outcome: HandledEvent['outcome'];
  attempt: number;
  t?: StepTimings & { emitStartedAt?: number };
  outOfOrder?: boolean;
  error?: KeyflowError;
  emitted?: string[];
}

export function reportHandled(instrumentation: Instrumentation, r: HandledReport): void {
  const e = r.item.event;
  const t = r.t ?? {};
  instrumentation.emit(EVENTS.EVENT_HANDLED, {
    stage: r.stage,
    topic: r.topic,
    partition: r.partition,
    offset: r.item.raw.offset,
    key: r.item.key ?? '',
    eventId: r.item.eventId,
    traceId: e?.traceId,
    // The input's own traceparent, so a trace continues from the upstream producer's span.
    traceparent: r.item.raw.headers[HEADERS.TRACEPARENT],
    tenantId: e?.tenantId,
    occurredAt: e?.occurredAt,
    consumedAt: e?.consumedAt ?? Date.now(),
    readStartedAt: t.readStartedAt,
    decideStartedAt: t.decideStartedAt,
    writeStartedAt: t.writeStartedAt,
    emitStartedAt: t.emitStartedAt,
    finishedAt: Date.now(),
    attempt: r.attempt,
    outcome: r.outcome,
    outOfOrder: r.outOfOrder === true,
    errorCode: r.error?.code,
    errorMessage: r.error?.message,
    emitted: r.emitted ?? [],
  });
}
