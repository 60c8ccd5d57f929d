// Where a member may start on a partition it was just given, exactly-once on @platformatic/kafka.
//
// A transaction's offset commit is checked against the group when it is added (KIP-447), but it takes
// effect only when the transaction commits. A member stopped between the two (a SIGSTOP, a long GC
// pause) and dropped from the group still commits on waking, before its transaction times out: its
// changes become visible and the group's offset moves past its batch. The partition's new owner has
// meanwhile read the offset from before that batch (the library asks without `requireStable`) and
// redone the batch, re-sending its changes: each one twice on the change topic (the fault suite's
// `zombie` scenario, 59 duplicate changes). kafkajs members fence the old transaction instead (their
// transactional id belongs to the partition); here the id belongs to the process.
//
// So before its first delivery of a partition, the member asks for the committed offset with
// `requireStable`: the coordinator answers UNSTABLE_OFFSET_COMMIT while a transaction holds one
// pending, and the member waits until it commits or aborts. Records below the stable offset were done
// by the one that committed it: they are dropped, for every delivery of this ownership.
import { Admin } from '@platformatic/kafka';
import { KeyflowError } from '../errors';
import { brokerAnswers } from './platformatic-errors';
import type { PlatformaticBase } from './platformatic-options';

/** Longer than a transaction can stay pending: the coordinator aborts it after its timeout and a scan. */
const WAIT_MS = 60_000;

export class StableStarts {
  private admin: Admin | undefined;
  /** Ownership token → the stable committed offset read for it (-1n: the group had none). */
  private readonly from = new Map<number, bigint>();

  constructor(
    private readonly base: PlatformaticBase,
    private readonly groupId: string,
  ) {}

  /**
   * The offset this ownership of the partition starts at, once no transaction holds one pending: read
   * once per ownership `token`, then remembered. Throws a retriable KeyflowError if it stays unstable.
   */
  async startOf(token: number, topic: string, partition: number, owned: () => boolean): Promise<bigint> {
    const known = this.from.get(token);
    if (known !== undefined) return known;
    const deadline = Date.now() + WAIT_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const offset = await this.stable(topic, partition);
        this.from.set(token, offset);
        return offset;
      } catch (err) {
        const pending = brokerAnswers(err).includes('UNSTABLE_OFFSET_COMMIT');
        if (!pending || !owned() || Date.now() > deadline)
          throw new KeyflowError(
            'UNREACHABLE',
            `${topic}[${partition}]: could not read the group's stable committed offset${pending ? ': a transaction kept it pending' : ''}`,
            { retriable: true, cause: err },
          );
        await new Promise((r) => setTimeout(r, Math.min(1_000, 100 * attempt)));
      }
    }
  }

  /** Forgets ownerships that ended. */
  retain(live: (token: number) => boolean): void {
    for (const token of [...this.from.keys()]) if (!live(token)) this.from.delete(token);
  }

  private async stable(topic: string, partition: number): Promise<bigint> {
    this.admin ??= new Admin({ ...this.base, clientId: `${this.base.clientId}-stable` });
    const [g] = await this.admin.listConsumerGroupOffsets({
      groups: [{ groupId: this.groupId, topics: [{ name: topic, partitionIndexes: [partition] }] }],
      requireStable: true,
    });
    const p = g?.topics.find((t) => t.name === topic)?.partitions.find((x) => x.partitionIndex === partition);
    return p?.committedOffset ?? -1n;
  }

  async close(): Promise<void> {
    const a = this.admin;
    this.admin = undefined;
    await a?.close().catch(() => undefined);
  }
}
