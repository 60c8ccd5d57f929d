// The stage's group adapter, over the client's group member (src/kafka/types.ts): it owns what keeps
// a delivery safe to work on — the ingest byte budget, heartbeats while the delivery is worked on, the
// retention check before it — and hands the runner a neutral Delivery. Rejoining when the group moves
// on is the client's (it knows its own answers); the runner only sees `active()` turn false.
import { KeyflowError } from '../errors';
import type { Logger } from '../logger';
import type { WireRecord } from '../producers/types';
import type { ClientBatch, GroupEvents, GroupMember, GroupOptions, RawMessage } from '../kafka/types';
import { deliveryBytes, type ByteBudget } from './byte-budget';
import type { RetentionWatch, SkippedRange } from './retention';

export type { RawMessage };

/** What one fetch delivered from one partition, and what the runner may do with it. */
export interface Delivery {
  topic: string;
  partition: number;
  messages: RawMessage[];
  /** Records between this batch's end and the partition's high watermark. */
  lag: number;
  /**
   * May this delivery still start work and write? False once the member stops, the partition was
   * revoked, or the group moved on (the delivery keeps itself alive by heartbeats until it ends).
   */
  active(): boolean;
  /** Commits `next` (the offset after the last completed one) for this partition. */
  commit(next: string): Promise<void>;
  /** The offset after the batch's last record, control records included (see ClientBatch.end). */
  end?: string;
  /** Exactly-once: `records` and the offset `next` in one Kafka transaction (see ClientBatch.transact). */
  transact?(records: WireRecord[], next: string): Promise<void>;
}

export interface StageGroupOptions {
  member: (opts: GroupOptions, events: GroupEvents) => GroupMember;
  group: GroupOptions;
  events: GroupEvents;
  heartbeatIntervalMs: number;
  log: Logger;
  /** Shared by every stage of the process: the fetched bytes held at once (default: no bound). */
  ingest?: ByteBudget;
  /** Reports offsets that fell out of retention before the stage read them (default: no check). */
  retention?: { watch: RetentionWatch; report(range: SkippedRange): Promise<void> };
}

/** Heartbeats every `intervalMs` until the returned stop is called. The one heartbeat loop. */
export function heartbeats(beat: () => Promise<void>, intervalMs: number, log: Logger): () => void {
  const timer = setInterval(() => {
    beat().catch((err) => log.debug({ err }, 'heartbeat failed'));
  }, intervalMs);
  return () => clearInterval(timer);
}

export class StageGroup {
  private member: GroupMember | undefined;

  constructor(private readonly opts: StageGroupOptions) {}

  async start(onDelivery: (d: Delivery) => Promise<void>): Promise<void> {
    const { opts } = this;
    this.member = opts.member(opts.group, {
      ...opts.events,
      onJoin: (assigned) => {
        opts.retention?.watch.reset();
        void this.scan(assigned);
        opts.events.onJoin?.(assigned);
      },
    });
    await this.scan(opts.group.topics.map((topic) => ({ topic })));
    await this.member.start((b) => this.deliver(b, onDelivery));
  }

  stop(): Promise<void> {
    return this.member?.stop() ?? Promise.resolve();
  }

  /** Heartbeats go on from the wait for ingest room to the delivery's end, so a long batch keeps its partition. */
  private async deliver(b: ClientBatch, onDelivery: (d: Delivery) => Promise<void>): Promise<void> {
    const stop = heartbeats(() => b.heartbeat(), this.opts.heartbeatIntervalMs, this.opts.log);
    const release = await this.opts.ingest?.take(deliveryBytes(b.messages));
    try {
      // Exactly-once asked for and a client that cannot: refusing beats a silent at-least-once.
      if (this.opts.group.transactions && !b.transact) {
        throw new KeyflowError(
          'CONFIG_INVALID',
          'KEYFLOW_DELIVERY_GUARANTEE=exactly-once but the Kafka client gave no transactions; set it to at-least-once or use a client that has them',
        );
      }
      await this.check(b);
      const transact = b.transact?.bind(b);
      await onDelivery({
        topic: b.topic,
        partition: b.partition,
        messages: b.messages,
        lag: b.lag,
        active: () => b.active(),
        commit: (next) => b.commit(next),
        end: b.end,
        ...(transact ? { transact } : {}),
      });
    } finally {
      stop();
      release?.();
    }
  }

  /**
   * Records of the partition that fell out of retention before this stage read them: the client has
   * already applied its reset policy, so the range is gone; it must not go unnoticed. A check that
   * cannot reach the broker is logged and the delivery goes on (it loses nothing by that).
   */
  private async check(b: ClientBatch): Promise<void> {
    const retention = this.opts.retention;
    if (!retention) return;
    const first = b.messages[0]!.offset;
    const last = b.messages[b.messages.length - 1]!.offset;
    let range: SkippedRange | undefined;
    try {
      range = await retention.watch.check(b.topic, b.partition, first, last);
    } catch (err) {
      this.opts.log.warn(
        { err, topic: b.topic, partition: b.partition },
        'could not check for skipped offsets',
      );
      return;
    }
    if (range) await retention.report(range);
  }

  /**
   * Compares committed offsets with log starts before the client fetches (at start, for every input
   * partition; on a join, for the assigned ones): the client resets an offset out of range and commits
   * over it, so afterwards nothing would show what was skipped. A scan that fails is logged.
   */
  private async scan(assigned: { topic: string; partitions?: number[] }[]): Promise<void> {
    const retention = this.opts.retention;
    if (!retention) return;
    for (const a of assigned) {
      try {
        for (const range of await retention.watch.scan(a.topic, a.partitions)) await retention.report(range);
      } catch (err) {
        this.opts.log.warn({ err, topic: a.topic }, 'could not check for skipped offsets');
      }
    }
  }
}
