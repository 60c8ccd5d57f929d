// Stage runner options and their defaults; the processor fills them from the validated config. The
// group's own settings carry the names of the client interface's GroupOptions, so they pass as they are.
import type { GroupOptions } from '../kafka/types';
import type { RetryPolicy } from './retry';

/** The runner options that are the group member's (see `groupOptions`). */
export type GroupSettings = Required<Omit<GroupOptions, 'groupId' | 'topics' | 'transactions' | 'readOnly'>>;

export interface RunnerOptions extends GroupSettings {
  /** Per partition, how many distinct keys run at once. */
  keyLanes: number;
  retry: RetryPolicy;
  /** Set explicitly (clients default it to 60 s or more): the in-batch retry budget is bounded by it. */
  rebalanceTimeoutMs: number;
  /**
   * Inside one delivery, how long an infrastructure call is retried before the delivery gives up and
   * its uncommitted rest is fetched again: well under the rebalance timeout, so a member that waits
   * out an outage never holds a rebalance up until the group drops it.
   */
  infraRetryBudgetMs: number;
  /** Fetch sizes: no fetch is larger than the process's ingest budget (KEYFLOW_INGEST_MAX_BYTES). */
  fetchMaxBytes: number;
  fetchMaxBytesPerPartition: number;
  /** How many partitions of the stage one instance works on at once. */
  partitionsAtOnce: number;
  /** Flush emitted records and commit when this many are pending, or after flushIntervalMs. */
  flushMaxRecords: number;
  flushIntervalMs: number;
  /** How long the broker may hold a fetch waiting for data; low keeps end-to-end latency low. */
  fetchWaitMs: number;
  /** Entity lease time-to-live when locking is on. */
  leaseTtlMs: number;
  /** Prefixes the stage's group id (KEYFLOW_APPLICATION_ID; see topology/names.ts). */
  applicationId: string;
  /** Identifies this processor instance (lease owner, client id). */
  instanceId: string;
  /** Where a new group starts: `earliest` reads each input topic from its beginning. */
  startAt: 'earliest' | 'latest';
  /** How long a resolved dead letter is kept in MongoDB. */
  deadLetterRetentionMs: number;
  /** The dead-letter topics' max.message.bytes: a larger record is sent header-only. */
  dlqMaxMessageBytes: number;
  /**
   * exactly-once: each flush is one Kafka transaction holding the completed prefix's records, its
   * dead-letter records and its offset (KEYFLOW_DELIVERY_GUARANTEE); at-least-once: send, then commit.
   */
  deliveryGuarantee: 'exactly-once' | 'at-least-once';
}

export const RUNNER_DEFAULTS: Omit<RunnerOptions, 'instanceId'> = {
  keyLanes: 16,
  retry: { maxAttempts: 5, baseMs: 200, maxMs: 30_000 },
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3_000,
  rebalanceTimeoutMs: 60_000,
  infraRetryBudgetMs: 20_000,
  fetchMaxBytes: 10 * 1024 * 1024,
  fetchMaxBytesPerPartition: 1024 * 1024,
  partitionsAtOnce: 4,
  flushMaxRecords: 500,
  flushIntervalMs: 1_000,
  fetchWaitMs: 250,
  leaseTtlMs: 30_000,
  startAt: 'earliest',
  applicationId: '',
  deadLetterRetentionMs: 30 * 24 * 3600 * 1000,
  dlqMaxMessageBytes: 1_048_576,
  // The processor passes KEYFLOW_DELIVERY_GUARANTEE (default exactly-once); a runner built on these
  // defaults alone runs on a client that may have no transactions.
  deliveryGuarantee: 'at-least-once',
};

/** The group member's options of a stage, under the one group id the processor names it by. */
export function groupOptions(opts: RunnerOptions, groupId: string, topics: string[]): GroupOptions {
  return {
    groupId,
    topics,
    startAt: opts.startAt,
    sessionTimeoutMs: opts.sessionTimeoutMs,
    rebalanceTimeoutMs: opts.rebalanceTimeoutMs,
    heartbeatIntervalMs: opts.heartbeatIntervalMs,
    fetchWaitMs: opts.fetchWaitMs,
    fetchMaxBytes: opts.fetchMaxBytes,
    fetchMaxBytesPerPartition: opts.fetchMaxBytesPerPartition,
    partitionsAtOnce: opts.partitionsAtOnce,
    // The group id names the stage under its application id, so the ids are
    // transactionalIdFor(applicationId, stage, slot) with the slot appended by the client.
    ...(opts.deliveryGuarantee === 'exactly-once' ? { transactions: { idPrefix: `${groupId}.tx.` } } : {}),
  };
}
