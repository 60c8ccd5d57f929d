// Exactly-once through @platformatic/kafka: one transactional producer per group member. Each call
// sends a delivery's records and commits its input offset in one transaction (KIP-447): the offset
// commit carries the member's group metadata, so the coordinator refuses it from a member that lost
// the partition, and the whole transaction aborts. One transaction at a time per producer, so the
// member's partitions take turns.
import { Producer, type Message } from '@platformatic/kafka';
import { KeyflowError } from '../errors';
import type { WireRecord } from '../producers/types';
import type { KeyflowConsumer } from './platformatic-consumer';
import { brokerAnswers, isFenced, sendError } from './platformatic-errors';
import { PRODUCER_DEFAULTS, type PlatformaticBase } from './platformatic-options';
import { toMessage } from './platformatic-producer';

export class MemberTransactions {
  private producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined;
  private turn: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly base: PlatformaticBase,
    private readonly transactionalId: string,
    private readonly timeoutMs: number | undefined,
    private readonly consumer: () => KeyflowConsumer,
    private readonly classic: boolean,
  ) {}

  private current(): Producer<Buffer, Buffer, Buffer, Buffer> {
    this.producer ??= new Producer<Buffer, Buffer, Buffer, Buffer>({
      ...this.base,
      clientId: `${this.base.clientId}-tx`,
      transactionalId: this.transactionalId,
      ...PRODUCER_DEFAULTS,
      // A fresh producer id for this transactional id, fencing any earlier producer of it: the
      // library otherwise sends id 0 epoch 0, which the coordinator answers with PRODUCER_FENCED once
      // the id has a producer.
      producerId: -1n,
      producerEpoch: -1,
      // The library sends its request timeout as the transaction timeout (InitProducerId).
      ...(this.timeoutMs !== undefined ? { timeout: this.timeoutMs } : {}),
    });
    return this.producer;
  }

  /** Sends `records` and commits `next` for topic/partition in one transaction, or throws. */
  transact(
    topic: string,
    partition: number,
    records: WireRecord[],
    next: string,
    owned: () => boolean,
  ): Promise<void> {
    const run = this.turn.then(() => this.once(topic, partition, records, next, owned));
    this.turn = run.catch(() => undefined);
    return run;
  }

  private async once(
    topic: string,
    partition: number,
    records: WireRecord[],
    next: string,
    owned: () => boolean,
  ): Promise<void> {
    if (!owned()) throw fenced(topic, partition, undefined);
    const producer = this.current();
    const consumer = this.consumer();
    // The group metadata as of the ownership check: a member fenced and rejoined meanwhile has a new
    // epoch, and the coordinator checks only the epoch, not who owns the partition now.
    const member = {
      groupId: consumer.groupId,
      memberId: consumer.memberId,
      generationId: this.classic ? consumer.generationId : consumer.memberEpoch,
      coordinatorId: consumer.coordinatorId,
    };
    let tx: Awaited<ReturnType<typeof producer.beginTransaction>> | undefined;
    try {
      tx = await producer.beginTransaction();
      if (records.length > 0) await tx.send({ messages: records.map(toMessage) });
      await tx.addConsumer(consumer);
      // The library commits a message's offset + 1: a stand-in for the record before `next`.
      const consumed = {
        topic,
        partition,
        offset: BigInt(next) - 1n,
        metadata: { consumer: member },
      } as unknown as Message<Buffer, Buffer, Buffer, Buffer>;
      await tx.addOffset(consumed);
      await tx.commit();
    } catch (err) {
      if (tx && !tx.completed) await tx.abort().catch(() => undefined);
      // A fresh producer (InitProducerId again) fences whatever this one left open.
      this.retire();
      // KIP-848: the member still owns the partition but its epoch moved on (the group changed; the
      // coordinator answers a transactional commit's stale epoch with ILLEGAL_GENERATION): the next
      // attempt carries the new epoch, or finds the partition gone.
      const stale = brokerAnswers(err).some((a) => a === 'ILLEGAL_GENERATION' || a === 'STALE_MEMBER_EPOCH');
      if (!this.classic && stale && owned())
        throw new KeyflowError('PRODUCE_FAILED', `${topic}[${partition}]: the member epoch moved on`, {
          retriable: true,
          cause: err,
        });
      if (isFenced(err) || !owned()) throw fenced(topic, partition, err);
      throw sendError(err, records.length);
    }
  }

  private retire(): void {
    const p = this.producer;
    this.producer = undefined;
    void p?.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.turn;
    const p = this.producer;
    this.producer = undefined;
    await p?.close().catch(() => undefined);
  }
}

function fenced(topic: string, partition: number, cause: unknown): KeyflowError {
  return new KeyflowError(
    'PARTITION_FENCED',
    `${topic}[${partition}] belongs to another member now: the transaction was fenced and aborted`,
    { retriable: false, cause },
  );
}
