// Keyflow's own Kafka client interface: what the engine needs of a group member, a producer, the
// admin calls and the offsets reader. The rest of the code reaches Kafka through these alone; an
// adapter (kafkajs-*.ts today) implements them, and a second one touches only its own files.
import type { Logger } from '../logger';
import type { WireRecord } from '../producers/types';
import type { TopicSpec } from '../topology/types';

/** One consumed record, as the engine sees it. */
export interface RawMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** One fetched batch of one partition, as the client hands it to the group adapter. */
export interface ClientBatch {
  topic: string;
  partition: number;
  messages: RawMessage[];
  /** Records between this batch's end and the partition's high watermark. */
  lag: number;
  /** Tells the coordinator this member is alive. An answer that the group moved on is kept by the client. */
  heartbeat(): Promise<void>;
  /**
   * False once the member is stopping, this batch is stale (the partition was revoked), the group
   * answered a heartbeat with a rebalance or a lost generation, or no heartbeat succeeded for half a
   * session timeout: no new event should start.
   */
  active(): boolean;
  /** Commits `next` (the offset after the last completed one) for this partition. */
  commit(next: string): Promise<void>;
  /**
   * The offset after this batch's last record, control records (transaction markers) included: once
   * every message is done, committing it leaves a caught-up transactional partition at lag 0. Absent:
   * one past the last message.
   */
  end?: string;
  /**
   * Exactly-once only (present when GroupOptions.transactions is set): sends `records` and commits
   * `next` for this partition in one Kafka transaction. It commits, or aborts and throws; nothing of an
   * aborted one is visible to a read_committed reader. A member that lost the partition is fenced: it
   * throws a KeyflowError with code PARTITION_FENCED. Which transactional ids carry it (one per input
   * partition for a client without KIP-447, one per member with it) is the adapter's choice.
   */
  transact?(records: WireRecord[], next: string): Promise<void>;
}

export interface GroupOptions {
  groupId: string;
  topics: string[];
  /** Where a group without a committed offset starts (and where an offset out of range resets to). */
  startAt: 'earliest' | 'latest';
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** How long the broker may hold a fetch waiting for data. */
  fetchWaitMs?: number;
  /** Largest fetch response (all partitions) and per partition, in bytes. */
  fetchMaxBytes?: number;
  fetchMaxBytesPerPartition?: number;
  /** How many partitions one member works on at once. */
  partitionsAtOnce?: number;
  /**
   * A reader that never commits (a group of its own, read from `startAt` on every start): a batch is
   * done once its handler returns. Without it, a batch whose handler returns with part of it
   * uncommitted while the member still owns the partition is delivered again from the first
   * uncommitted record, so a worker that stopped early (its heartbeat lapsed) loses nothing.
   */
  readOnly?: boolean;
  /**
   * Exactly-once: batches carry `transact`, transactional ids start with `idPrefix`
   * (transactionalIdFor(applicationId, stage, slot)), and the member reads with read_committed.
   */
  transactions?: { idPrefix: string; timeoutMs?: number };
}

export interface GroupEvents {
  /** The member (re)joined; `assigned` lists its partitions per topic. */
  onJoin?(assigned: { topic: string; partitions: number[] }[]): void;
  onCrash?(err: unknown, restart: boolean): void;
}

/**
 * A member of one consumer group. start() resolves once it runs; stop() leaves the group, safe twice.
 * When a batch handler returns while the group is rebalancing and the batch was not all committed,
 * the client rejoins at once (its uncommitted rest goes to the partition's next owner); a handler that
 * throws is restarted by the client (the batch is fetched again).
 */
export interface GroupMember {
  start(onBatch: (b: ClientBatch) => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

/** Sends records, acknowledged (acks=all) before it resolves; failures are KeyflowErrors. */
export interface RecordSender {
  connect(): Promise<void>;
  send(records: WireRecord[]): Promise<void>;
  disconnect(): Promise<void>;
}

export interface SenderOptions {
  /** Retries of one send inside the client before it fails. */
  sendRetries: number;
  requestTimeoutMs: number;
}

/** A group as its coordinator describes it. */
export interface GroupState {
  /** `Stable`, `Empty`, `Dead`, … (the protocol's own names; `Reconciling`/`Assigning` under KIP-848). */
  state: string;
  members: number;
  /** Partitions currently assigned to each member, in the coordinator's member order. */
  assigned: number[];
}

/** The group's committed offsets and the partitions' log bounds: one reader for retention and lag. */
export interface OffsetsReader {
  /** The group's committed offset per partition of `topic`; a partition without one is absent. */
  committed(groupId: string, topic: string): Promise<Map<number, bigint>>;
  /**
   * The first offset (`low`) and the end a read_committed member can reach (`high`: the last stable
   * offset, which equals the high watermark unless a transaction is open) per partition of `topic`.
   * A reader that must see everything written reads to the high watermark instead (log-ends.ts).
   */
  bounds(topic: string): Promise<Map<number, { low: bigint; high: bigint }>>;
  /** Each group's state, member count and partitions per member, classic or consumer protocol (KIP-848). */
  groups(groupIds: string[]): Promise<Map<string, GroupState>>;
  close(): Promise<void>;
}

/** Topic administration at start: make the broker match the declared topics. */
export interface TopicAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /** Creates missing topics, refuses an existing one that differs; returns the names created. */
  ensureTopics(topics: TopicSpec[], log: Logger): Promise<string[]>;
}

/** The client: everything the engine opens on Kafka. Every failure it reports is a KeyflowError. */
export interface KafkaClient {
  member(opts: GroupOptions, events?: GroupEvents): GroupMember;
  sender(opts: SenderOptions): RecordSender;
  /** Connected on first use; close() when done. */
  offsets(): OffsetsReader;
  admin(): TopicAdmin;
}
