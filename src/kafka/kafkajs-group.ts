// The kafkajs group member: joins a consumer group and hands each fetched batch of one partition to
// the engine as a neutral ClientBatch. kafkajs's own answers stay here: a heartbeat answered with a
// rebalance makes the batch inactive, and once the batch handler returns with work uncommitted the
// member rethrows that answer, so kafkajs rejoins at once instead of fetching again. The member reads
// read_committed; with transactions set, each batch also carries `transact` (kafkajs-transactions.ts).
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { headersToStrings } from '../producers/headers';
import { fromKafkajs, kafkajsCall } from './kafkajs-errors';
import { PartitionTransactions } from './kafkajs-transactions';
import type { ClientBatch, GroupEvents, GroupMember, GroupOptions } from './types';

export class KafkajsGroupMember implements GroupMember {
  private readonly consumer: Consumer;
  private readonly transactions: PartitionTransactions | undefined;
  /** Per partition, a commit past control records still under way: the partition's next batch waits. */
  private readonly markers = new Map<string, Promise<void>>();
  private stopped: Promise<void> | undefined;

  constructor(
    kafka: Kafka,
    private readonly opts: GroupOptions,
    events: GroupEvents = {},
  ) {
    this.consumer = kafka.consumer({
      groupId: opts.groupId,
      sessionTimeout: opts.sessionTimeoutMs,
      rebalanceTimeout: opts.rebalanceTimeoutMs,
      heartbeatInterval: opts.heartbeatIntervalMs,
      maxWaitTimeInMs: opts.fetchWaitMs,
      maxBytes: opts.fetchMaxBytes,
      maxBytesPerPartition: opts.fetchMaxBytesPerPartition,
      allowAutoTopicCreation: false,
      // Records of aborted transactions never reach a stage, and open ones wait until they end.
      readUncommitted: false,
    });
    if (opts.transactions) {
      this.transactions = new PartitionTransactions(kafka, {
        groupId: opts.groupId,
        ...opts.transactions,
        seek: (topic, partition, offset) => this.consumer.seek({ topic, partition, offset }),
      });
    }
    // A fetch that held only control records (transaction markers) or aborted records never reaches
    // eachBatch: kafkajs moves its position past them but, without auto-commit, commits nothing, so
    // a caught-up partition would show lag for ever. Its end is committed here (a plain commit: it
    // carries the group generation, so a member that lost the partition is refused).
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, (e) => {
      const { topic, partition, batchSize, lastOffset } = e.payload;
      if (batchSize === 0) this.commitPastMarkers(topic, partition, BigInt(lastOffset) + 1n);
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      void this.transactions?.reset();
      const assignment = e.payload.memberAssignment as Record<string, number[]>;
      events.onJoin?.(Object.entries(assignment).map(([topic, partitions]) => ({ topic, partitions })));
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => events.onCrash?.(e.payload.error, e.payload.restart));
  }

  async start(onBatch: (b: ClientBatch) => Promise<void>): Promise<void> {
    await this.consumer.connect();
    for (const topic of this.opts.topics) {
      await this.consumer.subscribe({ topic, fromBeginning: this.opts.startAt === 'earliest' });
    }
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.partitionsAtOnce ?? 1,
      eachBatch: async (payload) => {
        if (payload.batch.isEmpty()) return;
        const { topic, partition, messages } = payload.batch;
        await this.markers.get(`${topic}-${partition}`);
        const txns = this.transactions;
        const start = txns?.begin(BigInt(messages[0]!.offset));
        const transact: ClientBatch['transact'] =
          txns && ((records, next) => txns.transact(topic, partition, records, next, start!));
        const batch = toBatch(payload, this.opts.sessionTimeoutMs ?? 30_000, Date.now, transact);
        try {
          // Fences older owners of the partition first; a delivery overlapping their commits is dropped.
          if (txns && !(await txns.prepare(topic, partition, start!)).ok) return;
          await onBatch(batch);
          // kafkajs fetches again from the last resolved offset: a reader that never commits moves on.
          if (this.opts.readOnly) payload.resolveOffset(payload.batch.lastOffset());
        } catch (err) {
          throw restartable(err);
        }
        const moved = batch.moved();
        // Thrown so kafkajs rejoins now instead of fetching again: the group is waiting for us; the
        // uncommitted rest goes to the partition's next owner.
        if (moved !== undefined && !batch.allCommitted()) throw moved;
      },
    });
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await this.consumer.disconnect();
      await Promise.all(this.markers.values());
      await this.transactions?.close();
    })();
    return this.stopped;
  }

  private commitPastMarkers(topic: string, partition: number, next: bigint): void {
    const k = `${topic}-${partition}`;
    const before = this.markers.get(k) ?? Promise.resolve();
    const done = before
      .then(() => this.consumer.commitOffsets([{ topic, partition, offset: next.toString() }]))
      .then(() => this.transactions?.committed(topic, partition, next))
      // Refused (a rebalance, a lost partition) or unreachable: the next fetch past markers tries again.
      .catch(() => undefined)
      .finally(() => {
        if (this.markers.get(k) === done) this.markers.delete(k);
      });
    this.markers.set(k, done);
  }
}

/**
 * A batch that failed leaves its uncommitted rest to be fetched again, so the member must come back:
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

/** A kafkajs batch as a ClientBatch, plus what the member asks of it once the handler returned. */
export function toBatch(
  payload: EachBatchPayload,
  sessionTimeoutMs: number,
  now = Date.now,
  transact?: ClientBatch['transact'],
): ClientBatch & { moved(): unknown; allCommitted(): boolean } {
  const { batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary } = payload;
  let moved: unknown;
  let lastBeat = now();
  let committed: bigint | undefined;
  const last = batch.messages[batch.messages.length - 1];
  // lastOffset() counts the control and aborted records the fetch held after the last message.
  const end = BigInt(batch.lastOffset()) + 1n;
  const lastDone = last ? BigInt(last.offset) + 1n : end;
  return {
    end: end.toString(),
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
        throw fromKafkajs(err);
      }
    },
    // The coordinator evicts a member a session timeout after the last heartbeat it received, which
    // is before our lastBeat; stopping at half that leaves the round in flight time to settle before
    // another member can have been given the partition.
    active: () => isRunning() && !isStale() && moved === undefined && now() - lastBeat < sessionTimeoutMs / 2,
    moved: () => moved,
    allCommitted: () => committed !== undefined && committed >= lastDone,
    async commit(next) {
      // resolveOffset keeps kafkajs's own position in step; the commit goes through the batch's group
      // handle, which (unlike consumer.commitOffsets) still works while the member is stopping.
      resolveOffset((BigInt(next) - 1n).toString());
      await kafkajsCall(() =>
        commitOffsetsIfNecessary({
          topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }],
        }),
      );
      committed = BigInt(next);
    },
    ...(transact && {
      async transact(records, next) {
        await transact(records, next);
        resolveOffset((BigInt(next) - 1n).toString());
        committed = BigInt(next);
      },
    }),
  };
}
