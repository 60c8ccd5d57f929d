// Stage runner options and their defaults; the processor fills them from the validated config.
import type { RetryPolicy } from './retry';

export interface RunnerOptions {
  /** Per partition, how many distinct keys run at once. */
  keyLanes: number;
  retry: RetryPolicy;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** How many partitions of the stage one instance works on at once. */
  partitionsConsumedConcurrently: number;
  /** Flush emitted records and commit when this many are pending, or after flushIntervalMs. */
  flushMaxRecords: number;
  flushIntervalMs: number;
  /** How long the broker may hold a fetch waiting for data; low keeps end-to-end latency low. */
  maxWaitTimeInMs: number;
  /** Entity lease time-to-live when locking is on. */
  leaseTtlMs: number;
  /** Identifies this processor instance (lease owner, client id). */
  instanceId: string;
  /** Where a new group starts: true reads each input topic from its beginning. */
  fromBeginning: boolean;
  /** How long a resolved dead letter is kept in MongoDB. */
  deadLetterRetentionMs: number;
  /** The dead-letter topics' max.message.bytes: a larger record is sent header-only. */
  dlqMaxMessageBytes: number;
}

export const RUNNER_DEFAULTS: Omit<RunnerOptions, 'instanceId'> = {
  keyLanes: 16,
  retry: { maxAttempts: 5, baseMs: 200, maxMs: 30_000 },
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3_000,
  partitionsConsumedConcurrently: 4,
  flushMaxRecords: 500,
  flushIntervalMs: 1_000,
  maxWaitTimeInMs: 250,
  leaseTtlMs: 30_000,
  fromBeginning: true,
  deadLetterRetentionMs: 30 * 24 * 3600 * 1000,
  dlqMaxMessageBytes: 1_048_576,
};
