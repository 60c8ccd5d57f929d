// Types of the keyed producer: what callers hand it and what it puts on the wire.

/** Turns a topic's value into bytes (the Confluent wire format through the registry). */
export interface ValueEncoder {
  encode(topic: string, value: unknown): Promise<Buffer>;
}

/** Where a produced record came from: the event that caused it and the stage that emitted it. */
export interface Causation {
  eventId: string;
  stage: string;
  traceId: string;
  attempt: number;
  tenantId?: string;
}

/** A record ready for the wire. `value` null is a tombstone (compacted topics). */
export interface WireRecord {
  topic: string;
  key: string;
  value: Buffer | null;
  headers: Record<string, string>;
  eventId: string;
  /** Set only to pin a record to a partition (a re-driven dead letter returns to its original one). */
  partition?: number;
}
