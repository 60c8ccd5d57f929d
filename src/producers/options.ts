// Producer options and their defaults.

export interface ProducerOptions {
  /** Flush when this many records are queued (callers may also flush explicitly). */
  maxQueued: number;
  /** Per-request timeout of a send, ms. */
  requestTimeoutMs: number;
  /** kafkajs's own retries of one send (100 ms doubling to 5 s) before it answers with the failure. */
  sendRetries: number;
}

export const PRODUCER_DEFAULTS: ProducerOptions = {
  maxQueued: 1000,
  requestTimeoutMs: 30_000,
  sendRetries: 5,
};
