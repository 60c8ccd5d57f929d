// Standard headers on every record Keyflow produces, and W3C trace context helpers.
import { createHash, randomBytes } from 'node:crypto';

export const HEADERS = {
  EVENT_ID: 'keyflow-event-id',
  TRACEPARENT: 'traceparent',
  OCCURRED_AT: 'keyflow-occurred-at',
  CAUSATION_ID: 'keyflow-causation-id',
  CAUSATION_STAGE: 'keyflow-causation-stage',
  ATTEMPT: 'keyflow-attempt',
  TENANT_ID: 'keyflow-tenant-id',
  /** Set by `keyflow dlq replay`: the stage a re-driven record is meant for, and its letter. */
  REDRIVE_STAGE: 'keyflow-redrive-stage',
  REDRIVE_LETTER: 'keyflow-redrive-letter',
  /** Dead-letter records: why, where from, how many attempts. */
  DLQ_CODE: 'keyflow-dlq-code',
  DLQ_MESSAGE: 'keyflow-dlq-message',
  DLQ_STAGE: 'keyflow-dlq-stage',
  DLQ_ATTEMPTS: 'keyflow-dlq-attempts',
  DLQ_TOPIC: 'keyflow-dlq-topic',
  DLQ_PARTITION: 'keyflow-dlq-partition',
  DLQ_OFFSET: 'keyflow-dlq-offset',
  DLQ_FIRST_FAILED_AT: 'keyflow-dlq-first-failed-at',
  DLQ_DEAD_AT: 'keyflow-dlq-dead-at',
  /** On a dead-letter record too large for its topic: where the letter's bytes are kept instead. */
  DLQ_STORED: 'keyflow-dlq-stored',
} as const;

export interface TraceContext {
  traceId: string;
  spanId: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

export function parseTraceparent(value: string | undefined): TraceContext | undefined {
  const m = value ? TRACEPARENT.exec(value.trim()) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]! };
}

export function newTraceId(): string {
  return randomBytes(16).toString('hex');
}

export function formatTraceparent(traceId: string, spanId: string = randomBytes(8).toString('hex')): string {
  return `00-${traceId}-${spanId}-01`;
}

/**
 * The span id in a produced record's traceparent: its "send" span, derived from the record's event id
 * so the tracer (src/telemetry), which learns of the record only after it is built, gives that span
 * this same id, and a consumer's span links to it. A re-emission after a crash repeats it.
 */
export function recordSpanId(eventId: string): string {
  const id = createHash('sha256').update(`send\u0000${eventId}`).digest('hex').slice(0, 16);
  return /^0+$/.test(id) ? '0000000000000001' : id;
}

/**
 * The id of the i-th record a stage emits for a cause. Derived, not random, so a re-emission after a
 * crash carries the same id and downstream guards recognise it. An event id is unique only within its
 * tenant (two tenants may both send "evt-1"), so the tenant is part of the derivation: without it, two
 * tenants' changes would carry one id and a consumer deduping on it would drop one of them. A cause
 * without a tenant keeps the derivation ids had before the tenant was added.
 */
export function derivedEventId(
  causeEventId: string,
  stage: string,
  index: number,
  tenantId?: string,
): string {
  // JSON cannot hold a raw NUL, so a tenant-scoped input never equals a tenantless one.
  const input =
    tenantId === undefined
      ? `${causeEventId}\u0000${stage}\u0000${index}`
      : JSON.stringify([tenantId, causeEventId, stage, index]);
  const h = createHash('sha256').update(input).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Kafka header values arrive as Buffer | string | arrays; we keep the first as a string. */
export function headersToStrings(
  headers: Record<string, Buffer | string | (Buffer | string)[] | undefined> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = first.toString();
  }
  return out;
}
