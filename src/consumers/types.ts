// Ports the stage runner depends on, so it sees our own small interfaces rather than concrete clients.
import type { Db } from 'mongodb';
import type { Instrumentation } from '../instrumentation';
import type { GroupEvents, GroupMember, GroupOptions } from '../kafka/types';
import type { Logger } from '../logger';
import type { KeyedProducer } from '../producers/producer';
import type { ByteBudget } from './byte-budget';
import type { LetterStore } from './parked-keys';
import type { OffsetsPort, SkippedRange } from './retention';

export interface RunnerDeps {
  /** Joins a consumer group: the Kafka client's `member`. */
  member: (opts: GroupOptions, events: GroupEvents) => GroupMember;
  /** The stage's group id (default: groupIdFor(applicationId, stage) in topology/names.ts). */
  groupId?: string;
  decoder: ValueDecoder;
  producer: Pick<KeyedProducer, 'prepare' | 'sendNow'>;
  /** Default: the MongoDB-backed store in `db`. */
  letters?: LetterStore;
  /** Its indexes (dead letters among them) are created by the Processor before any runner starts. */
  db: Db;
  log: Logger;
  instrumentation: Instrumentation;
  leases?: EntityLeases;
  runtime?: () => RuntimeSwitches;
  /** Shared by every stage of the process: the fetched bytes held at once (default: no bound). */
  ingest?: ByteBudget;
  /** Inputs whose tombstones are deletes to pass; on any other input a null value is dead-lettered. */
  compacted?: (topic: string) => boolean;
  /** Committed offsets and log starts, to report offsets that fell out of retention (default: no check). */
  offsets?: OffsetsPort;
  /** Keeps a skipped range durably; default: the keyflow_skipped_ranges collection in `db`. */
  recordSkipped?: (range: SkippedRange) => Promise<void>;
}

export interface ValueDecoder {
  decode(topic: string, bytes: Buffer): Promise<{ value: unknown }>;
}

/** Per-entity lease, used when entity locking is switched on (src/state/leases.ts implements it). */
export interface EntityLeases {
  /** Takes or renews the lease; resolves to its fencing token. */
  acquire(key: string, owner: string, ttlMs: number): Promise<number>;
  release(key: string, owner: string): Promise<void>;
}

/** Options read on every event, so they can change without a restart (tenant-settings key `*`). */
export interface RuntimeSwitches {
  entityLocking: 'off' | 'lease';
}
