// Exactly-once on kafkajs: one transactional producer per owned input partition. kafkajs sends no group
// metadata with its transactional offset commits (no KIP-447), so the broker cannot tell a member that
// lost a partition from its owner by the group's generation; the transactional id
// `<idPrefix><topic>-<partition>` does it instead: whoever opens the id last (InitProducerId) fences
// every older producer of it and aborts a transaction one left open.
//
// Opening alone is not enough: an older owner may have committed between our join and our open. So
// every open is followed by a read of the group's committed offset, and work goes on only from there:
// a delivery that began before it is dropped and the consumer is moved to it. A delivery that began
// before the member last (re)joined its group may not commit at all: the join dropped what this member
// knew of its partitions, and the partition may have had another owner meanwhile (a member cut off from
// Kafka rejoins while its old deliveries still run). With that, every committed transaction starts
// exactly where the group's offset stood, and no two overlap.
import { CompressionTypes, type Admin, type Kafka, type Producer } from 'kafkajs';
import { KeyflowError } from '../errors';
import type { WireRecord } from '../producers/types';
import { kafkajsCall, transactionError } from './kafkajs-errors';
import { producerConfig } from './kafkajs-producer';

export interface TransactionsOptions {
  groupId: string;
  idPrefix: string;
  timeoutMs?: number;
  /** Moves the consumer's position of a partition (kafkajs consumer.seek). */
  seek(topic: string, partition: number, offset: string): void;
}

interface Slot {
  /** Absent once it failed; the next transaction opens a new one (and checks the offset again). */
  producer?: Producer;
  /** The group's committed offset as this member last knew it, once known. */
  position?: bigint;
}

/** What a delivery knew when it began: the join it began under, and its first offset. */
export interface DeliveryStart {
  readonly generation: number;
  readonly first: bigint;
}

/** What the partition's opening found: go on, or the delivery overlaps another owner's commits. */
export type Opened = { ok: true } | { ok: false; committed: bigint };

export class PartitionTransactions {
  private readonly slots = new Map<string, Slot>();
  private admin: Promise<Admin> | undefined;
  /** Producers created and still open: measured by the exactly-once integration test. */
  private producers = 0;
  /** Counts the member's joins: a delivery begun under an earlier one is stale. */
  private generation = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: TransactionsOptions,
  ) {}

  get openProducers(): number {
    return this.producers;
  }

  /** A (re)join: every producer goes, and the next delivery of each partition opens its own again. */
  async reset(): Promise<void> {
    this.generation++;
    const slots = [...this.slots.values()];
    this.slots.clear();
    await Promise.all(slots.map((s) => this.drop(s)));
  }

  /** Taken when a delivery starting at `first` arrives, before anything else is done with it. */
  begin(first: bigint): DeliveryStart {
    return { generation: this.generation, first };
  }

  /**
   * Before a delivery is worked on: opens the partition's producer unless it is open. A committed
   * offset past the delivery's first (first open) or other than the one we knew (a reopen) means
   * another owner committed meanwhile: the consumer is moved there and the delivery must be dropped.
   */
  async prepare(topic: string, partition: number, start: DeliveryStart): Promise<Opened> {
    this.current(topic, partition, start);
    const slot = this.slot(topic, partition);
    if (slot.producer) return { ok: true };
    return this.open(topic, partition, slot, start.first);
  }

  /**
   * Sends `records` and commits `next` for the partition in one transaction, for the delivery that
   * began at `start`; commits, or aborts and throws.
   */
  async transact(
    topic: string,
    partition: number,
    records: WireRecord[],
    next: string,
    start: DeliveryStart,
  ): Promise<void> {
    this.current(topic, partition, start);
    const slot = this.slot(topic, partition);
    if (!slot.producer) {
      const opened = await this.open(topic, partition, slot, start.first);
      if (!opened.ok) {
        throw new KeyflowError(
          'PARTITION_FENCED',
          `${topic}/${partition}: another owner committed up to ${opened.committed} since this delivery began`,
          { retriable: false },
        );
      }
    }
    const producer = slot.producer!;
    try {
      const tx = await producer.transaction();
      try {
        if (records.length)
          await tx.sendBatch({
            acks: -1,
            compression: CompressionTypes.None,
            topicMessages: byTopic(records),
          });
        await tx.sendOffsets({
          consumerGroupId: this.opts.groupId,
          topics: [{ topic, partitions: [{ partition, offset: next }] }],
        });
        await tx.commit();
      } catch (err) {
        // Aborting may fail too (the transaction is half-ended, or fenced); the producer goes either
        // way, and the next open aborts whatever it left behind.
        await tx.abort().catch(() => undefined);
        throw err;
      }
    } catch (err) {
      // kafkajs may have rolled the producer's sequence numbers back (kafkajs #1005), and a failed
      // commit leaves it unusable: a failed transaction's producer is never used again.
      await this.drop(slot);
      throw transactionError(err, records.length);
    }
    slot.position = BigInt(next);
  }

  /** Throws PARTITION_FENCED for a delivery begun before the member's latest join. */
  private current(topic: string, partition: number, start: DeliveryStart): void {
    if (start.generation === this.generation) return;
    throw new KeyflowError(
      'PARTITION_FENCED',
      `${topic}/${partition}: the member rejoined its group since this delivery began; the partition's owner redoes it`,
      { retriable: false },
    );
  }

  /** A plain commit (past control records only) moved the group's offset: keep our idea of it in step. */
  committed(topic: string, partition: number, next: bigint): void {
    const slot = this.slots.get(key(topic, partition));
    if (slot) slot.position = next;
  }

  async close(): Promise<void> {
    await this.reset();
    const admin = this.admin;
    this.admin = undefined;
    if (admin) await (await admin.catch(() => undefined))?.disconnect();
  }

  private slot(topic: string, partition: number): Slot {
    const k = key(topic, partition);
    let slot = this.slots.get(k);
    if (!slot) this.slots.set(k, (slot = {}));
    return slot;
  }

  private async open(
    topic: string,
    partition: number,
    slot: Slot,
    from: bigint | undefined,
  ): Promise<Opened> {
    const producer = this.kafka.producer({
      transactionalId: `${this.opts.idPrefix}${topic}-${partition}`,
      transactionTimeout: this.opts.timeoutMs,
      ...producerConfig(5),
    });
    this.producers++;
    try {
      await producer.connect();
      // kafkajs has no initTransactions: its first transaction sends InitProducerId, and ending one
      // that holds nothing sends nothing more.
      await (await producer.transaction()).abort();
    } catch (err) {
      this.producers--;
      await producer.disconnect().catch(() => undefined);
      throw transactionError(err, 0);
    }
    slot.producer = producer;
    const committed = await this.committedOffset(topic, partition);
    const known = slot.position;
    slot.position = committed ?? known;
    if (committed === undefined) return { ok: true };
    const moved = known !== undefined ? committed !== known : from !== undefined && committed > from;
    if (!moved) return { ok: true };
    this.opts.seek(topic, partition, committed.toString());
    return { ok: false, committed };
  }

  private async committedOffset(topic: string, partition: number): Promise<bigint | undefined> {
    return kafkajsCall(async () => {
      this.admin ??= (async () => {
        const a = this.kafka.admin();
        await a.connect();
        return a;
      })().catch((err: unknown) => {
        this.admin = undefined;
        throw err;
      });
      const [t] = await (await this.admin).fetchOffsets({ groupId: this.opts.groupId, topics: [topic] });
      const p = t?.partitions.find((x) => x.partition === partition);
      return p && Number(p.offset) >= 0 ? BigInt(p.offset) : undefined;
    });
  }

  private async drop(slot: Slot): Promise<void> {
    const producer = slot.producer;
    slot.producer = undefined;
    if (!producer) return;
    this.producers--;
    await producer.disconnect().catch(() => undefined);
  }
}

function key(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

function byTopic(records: WireRecord[]) {
  const out = new Map<string, WireRecord[]>();
  for (const r of records) {
    let list = out.get(r.topic);
    if (!list) out.set(r.topic, (list = []));
    list.push(r);
  }
  return [...out].map(([topic, list]) => ({
    topic,
    messages: list.map((r) => ({
      key: r.key,
      value: r.value,
      headers: r.headers,
      ...(r.partition !== undefined ? { partition: r.partition } : {}),
    })),
  }));
}
