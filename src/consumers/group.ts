// The group adapter: the one file on the consuming side that speaks kafkajs. It joins a consumer
// group, and hands the rest of the engine neutral deliveries — one fetched batch of one partition,
// with its heartbeat, liveness and commit — so the runner never sees a kafkajs type.
import type { Admin, Consumer, EachBatchPayload } from 'kafkajs';
import { headersToStrings } from '../producers/headers';
import type { KafkaClient } from '../producers/client';
import type { OffsetsPort } from './retention';

/** One consumed record, as the engine sees it. */
export interface RawMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** What one fetch delivered from one partition, and what the runner may do with it. */
export interface Delivery {
  topic: string;
  partition: number;
  messages: RawMessage[];
  /** Records between this batch's end and the partition's high watermark. */
  lag: number;
  /** Heartbeats the group; an answer that the group is moving on is remembered (see `moved`). */
  heartbeat(): Promise<void>;
  /**
   * False once the member is stopping, this batch is stale (the partition was revoked), the group
   * answered a heartbeat with a rebalance or a lost generation, or no heartbeat succeeded for a
   * session timeout (the coordinator may have dropped us): the runner then takes no new event.
   */
  active(): boolean;
  /**
   * The group's answer that it moved on (rebalance in progress, unknown member, illegal generation), if
   * one came. The runner rethrows it from the delivery so the client rejoins at once; what the delivery
   * did not commit is fetched again by whoever owns the partition next.
   */
  moved(): unknown;
  /** Commits `next` (the offset after the last completed one) for this partition. */
  commit(next: string): Promise<void>;
}

export interface GroupOptions {
  groupId: string;
  topics: string[];
  fromBeginning: boolean;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  maxWaitTimeInMs?: number;
  /** Largest fetch response (all partitions) and per partition, in bytes. */
  maxBytes?: number;
  maxBytesPerPartition?: number;
  partitionsConsumedConcurrently?: number;
}

export interface GroupEvents {
  /** The member (re)joined; `assigned` lists its partitions per topic. */
  onJoin?(assigned: { topic: string; partitions: number[] }[]): void;
  onCrash?(err: unknown, restart: boolean): void;
}

/** A member of one consumer group. start() resolves once it runs; stop() leaves the group, safe twice. */
export class GroupMember {
  private readonly consumer: Consumer;
  private stopped: Promise<void> | undefined;

  constructor(
    kafka: KafkaClient,
    private readonly opts: GroupOptions,
    events: GroupEvents = {},
  ) {
    this.consumer = kafka.consumer({
      groupId: opts.groupId,
      sessionTimeout: opts.sessionTimeoutMs,
      rebalanceTimeout: opts.rebalanceTimeoutMs,
      heartbeatInterval: opts.heartbeatIntervalMs,
      maxWaitTimeInMs: opts.maxWaitTimeInMs,
      maxBytes: opts.maxBytes,
      maxBytesPerPartition: opts.maxBytesPerPartition,
      allowAutoTopicCreation: false,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      const assignment = e.payload.memberAssignment as Record<string, number[]>;
      events.onJoin?.(Object.entries(assignment).map(([topic, partitions]) => ({ topic, partitions })));
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => events.onCrash?.(e.payload.error, e.payload.restart));
  }

  async start(onDelivery: (d: Delivery) => Promise<void>): Promise<void> {
    await this.consumer.connect();
    for (const topic of this.opts.topics) {
      await this.consumer.subscribe({ topic, fromBeginning: this.opts.fromBeginning });
    }
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.partitionsConsumedConcurrently ?? 1,
      eachBatch: async (payload) => {
        if (payload.batch.isEmpty()) return;
        try {
          await onDelivery(toDelivery(payload, this.opts.sessionTimeoutMs ?? 30_000));
        } catch (err) {
          throw restartable(err);
        }
      },
    });
  }

  stop(): Promise<void> {
    this.stopped ??= this.consumer.disconnect();
    return this.stopped;
  }
}

/**
 * The group's committed offsets and the partitions' log starts, from one admin client connected on
 * first use (it is asked once per partition after a join, and again only when a delivery jumps ahead).
 */
export function kafkaOffsets(kafka: KafkaClient): OffsetsPort & { close(): Promise<void> } {
  let admin: Promise<Admin> | undefined;
  const connected = () =>
    (admin ??= (async () => {
      const a = kafka.admin();
      await a.connect();
      return a;
    })().catch((err: unknown) => {
      admin = undefined;
      throw err;
    }));
  return {
    async committed(groupId, topic) {
      const [t] = await (await connected()).fetchOffsets({ groupId, topics: [topic] });
      const out = new Map<number, bigint>();
      for (const p of t?.partitions ?? []) if (Number(p.offset) >= 0) out.set(p.partition, BigInt(p.offset));
      return out;
    },
    async logStart(topic) {
      const parts = await (await connected()).fetchTopicOffsets(topic);
      return new Map(parts.map((p) => [p.partition, BigInt(p.low)]));
    },
    async close() {
      const a = admin;
      admin = undefined;
      if (a) await (await a.catch(() => undefined))?.disconnect();
    },
  };
}

/**
 * A delivery that failed leaves its uncommitted rest to be fetched again, so the member must come back:
 * kafkajs restarts a crashed consumer only when the innermost `cause` of the error says `retriable`,
 * and the innermost cause of ours is a driver error that says nothing (a MongoDB outage longer than
 * the retry budget left the stage dead for good inside a running process). Group answers pass as they
 * are, so kafkajs rejoins.
 */
export function restartable(err: unknown): unknown {
  if (groupMoved(err)) return err;
  const e = err as { message?: string; code?: string } | null;
  return Object.assign(new Error(e?.message ?? String(err)), {
    name: 'KeyflowDeliveryFailed',
    code: e?.code,
    retriable: true,
  });
}

/** Heartbeat answers that mean the group is rebalancing or no longer counts this member in. */
const GROUP_MOVED = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'FENCED_INSTANCE_ID',
  'NOT_COORDINATOR_FOR_GROUP',
]);

export function groupMoved(err: unknown): boolean {
  return GROUP_MOVED.has((err as { type?: string } | null)?.type ?? '');
}

export function toDelivery(payload: EachBatchPayload, sessionTimeoutMs: number, now = Date.now): Delivery {
  const { batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary } = payload;
  let moved: unknown;
  let lastBeat = now();
  return {
    topic: batch.topic,
    partition: batch.partition,
    messages: batch.messages.map((m) => ({
      offset: m.offset,
      key: m.key,
      value: m.value,
      headers: headersToStrings(m.headers),
    })),
    lag: Number(batch.offsetLag()),
    async heartbeat() {
      try {
        await heartbeat();
        lastBeat = now();
      } catch (err) {
        if (groupMoved(err)) moved ??= err;
        throw err;
      }
    },
    // The coordinator evicts a member a session timeout after the last heartbeat it received, which
    // is before our lastBeat; stopping at half that leaves the round in flight time to settle before
    // another member can have been given the partition.
    active: () => isRunning() && !isStale() && moved === undefined && now() - lastBeat < sessionTimeoutMs / 2,
    moved: () => moved,
    async commit(next) {
      // resolveOffset keeps kafkajs's own position in step; the commit goes through the batch's group
      // handle, which (unlike consumer.commitOffsets) still works while the member is stopping.
      resolveOffset((BigInt(next) - 1n).toString());
      await commitOffsetsIfNecessary({
        topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }],
      });
    },
  };
}
