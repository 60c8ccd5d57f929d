// Producer options and their defaults.

export interface ProducerOptions {
  /** Flush when this many records are queued (callers may also flush explicitly). */
  maxQueued: number;
  /** Per-request timeout of a send, ms. */
  requestTimeoutMs: number;
}

export const PRODUCER_DEFAULTS: ProducerOptions = { maxQueued: 1000, requestTimeoutMs: 30_000 };
