// The group adapter: the one file on the consuming side that speaks kafkajs. It joins a consumer
// group, and hands the rest of the engine neutral deliveries — one fetched batch of one partition,
// with its heartbeat, liveness and commit — so the runner never sees a kafkajs type.
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { headersToStrings } from '../producers/headers';
import type { KafkaClient } from '../producers/client';

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
  heartbeat(): Promise<void>;
  /** False once the member is stopping or this batch is stale (the partition was revoked). */
  active(): boolean;
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
        await onDelivery(toDelivery(payload));
      },
    });
  }

  stop(): Promise<void> {
    this.stopped ??= this.consumer.disconnect();
    return this.stopped;
  }
}

function toDelivery(payload: EachBatchPayload): Delivery {
  const { batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary } = payload;
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
    heartbeat,
    active: () => isRunning() && !isStale(),
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
