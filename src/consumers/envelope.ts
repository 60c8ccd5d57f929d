// The envelope: from a consumed record to the event a stage sees — its key, value, identity (event
// id, tenant, occurredAt, trace) — or the reason it cannot be one (no key, no value on a topic that
// is not compacted, undecodable bytes).
import { classify, KeyflowError } from '../errors';
import { HEADERS, newTraceId, parseTraceparent } from '../producers/headers';
import { keyMismatch } from '../topology/key-contract';
import type { StageEvent, StageSpec } from '../topology/types';
import type { RawMessage } from '../kafka/types';
import type { ValueDecoder } from './types';

/**
 * The one shape of a record on its way through a delivery, from opening to settlement. `event` is
 * absent when the record cannot be an event; `redriveLetter` is set for a record re-driven from a
 * dead letter.
 */
export interface InFlight {
  raw: RawMessage;
  key: string | null;
  eventId: string;
  event?: StageEvent;
  redriveLetter?: string;
}

/** An in-flight record that is an event for the stage's handler. */
export type Runnable = InFlight & { key: string; event: StageEvent };

export type Envelope =
  | { kind: 'event'; item: Runnable }
  /** Nothing for this stage to do: a tombstone, or a re-drive addressed to another stage. */
  | { kind: 'pass'; item: InFlight; report: boolean }
  /** Cannot become an event: it goes to the dead-letter topic with `error`. */
  | { kind: 'dead'; item: InFlight; error: KeyflowError };

export interface OpenOptions {
  topic: string;
  partition: number;
  spec: Pick<StageSpec, 'name' | 'eventId' | 'occurredAt' | 'tenantId' | 'entityKey'>;
  decoder: ValueDecoder;
  consumedAt: number;
  /** Inputs whose tombstones are deletes to pass (default: none). */
  compacted?: (topic: string) => boolean;
}

const asRecord = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};

/**
 * Opens one record. A decode failure that is retriable (the registry unreachable) is thrown: the
 * record is not the problem, and the runner must not dead-letter it.
 */
export async function openEnvelope(m: RawMessage, opts: OpenOptions): Promise<Envelope> {
  const { spec, decoder, consumedAt, compacted = () => false } = opts;
  const origin = { topic: opts.topic, partition: opts.partition };
  const headers = m.headers;
  const key = m.key ? m.key.toString() : null;
  const redriveStage = headers[HEADERS.REDRIVE_STAGE];
  const fallbackId = headers[HEADERS.EVENT_ID] ?? `${origin.topic}:${origin.partition}:${m.offset}`;
  // A re-driven record is meant for one stage; the others sharing its topic let it pass.
  if (redriveStage !== undefined && redriveStage !== spec.name) {
    return { kind: 'pass', item: { raw: m, key, eventId: fallbackId }, report: false };
  }
  const redriveLetter = redriveStage !== undefined ? headers[HEADERS.REDRIVE_LETTER] : undefined;
  const item: InFlight = { raw: m, key, eventId: fallbackId, redriveLetter };
  if (key === null) {
    const error = new KeyflowError('KEY_MISSING', `a message on ${origin.topic} has no key`);
    return { kind: 'dead', item, error };
  }
  // A tombstone on a compacted input is a delete the stage has nothing to apply for. On a topic with
  // cleanup policy `delete` a null value has no meaning: the sender lost its event, so it is kept.
  if (m.value === null) {
    if (compacted(origin.topic)) return { kind: 'pass', item, report: true };
    const error = new KeyflowError(
      'VALUE_MISSING',
      `a message on ${origin.topic} has no value (a tombstone), and the topic is not compacted`,
    );
    return { kind: 'dead', item, error };
  }

  let value: unknown;
  try {
    value = (await decoder.decode(origin.topic, m.value)).value;
  } catch (err) {
    const error = classify(err);
    if (error.retriable) throw error;
    return { kind: 'dead', item, error };
  }
  const v = asRecord(value);
  const eventId =
    headers[HEADERS.EVENT_ID] ??
    spec.eventId?.(value) ??
    (typeof v.eventId === 'string' ? v.eventId : undefined) ??
    fallbackId;
  // The input's key contract (key = the entity id the value names), see src/topology/key-contract.ts.
  const mismatch = keyMismatch(spec, origin.topic, key, value);
  if (mismatch) return { kind: 'dead', item: { ...item, eventId }, error: mismatch };
  const occurredHeader = Number(headers[HEADERS.OCCURRED_AT]);
  const occurredAt = Number.isFinite(occurredHeader)
    ? occurredHeader
    : (spec.occurredAt?.(value) ?? (typeof v.occurredAt === 'number' ? v.occurredAt : undefined));
  const tenantId =
    headers[HEADERS.TENANT_ID] ??
    spec.tenantId?.(value) ??
    (typeof v.tenantId === 'string' ? v.tenantId : undefined);
  const traceId = parseTraceparent(headers[HEADERS.TRACEPARENT])?.traceId ?? newTraceId();
  const event: StageEvent = {
    key,
    value,
    eventId,
    occurredAt,
    tenantId,
    traceId,
    topic: origin.topic,
    partition: origin.partition,
    offset: m.offset,
    attempt: 1,
    headers,
    consumedAt,
    ...(redriveLetter !== undefined ? { redrive: { letter: redriveLetter } } : {}),
  };
  return { kind: 'event', item: { raw: m, key, eventId, event, redriveLetter } };
}
