// The commit window of one delivery: events settle out of order (keys run apart), their emitted
// records (their own, or their dead-letter records) wait for the next flush, and a flush sends them,
// then commits the completed prefix of offsets — never past an event whose effects are not all done.
// Settling a delivery is the one call `flush`: records and offsets together (a Kafka transaction
// would go there). What must follow the records (resolving a re-driven letter) runs once they are
// sent and before the commit: a failure there leaves the offset uncommitted, so the event is redone.
import { classify, type KeyflowError } from '../errors';
import type { WireRecord } from '../producers/types';
import type { InFlight } from './envelope';
import { OffsetTracker } from './lanes';

export interface CommitWindowDeps {
  /** Sends records, acknowledged by the broker before it resolves. */
  send(records: WireRecord[]): Promise<void>;
  /** Commits `next` (one past the last completed offset). Throws when the partition was revoked. */
  commit(next: string): Promise<void>;
  /** Called after each successful commit with the offsets it newly covers. */
  committed?(last: string, offsets: string[]): void;
  /** Called once when a commit is refused: the partition belongs to another member now. */
  lost?(err: unknown): void;
  /**
   * The broker refused an event's records outright (too large, not authorised, no such topic): the
   * dead-letter module writes the event's letter and returns its dead-letter records to send instead.
   */
  refused?(item: InFlight, err: KeyflowError): Promise<WireRecord[]>;
}

export interface Settled {
  offset: string;
  records: readonly WireRecord[];
  /** The event whose records these are; absent for records that cannot be refused (dead letters). */
  item?: InFlight;
  /** Runs once the event's records are sent, before its offset is committed; never if they are not. */
  afterSend?: () => Promise<void>;
}

export interface FlushLimits {
  /** Flush when this many records are pending (offsets: four times as many). */
  maxRecords: number;
  intervalMs: number;
}

export class CommitWindow {
  private readonly tracker: OffsetTracker;
  private pending: Settled[] = [];
  private pendingRecords = 0;
  private lastFlush: number;
  private chain: Promise<void> = Promise.resolve();
  private lostPartition = false;

  constructor(
    offsets: readonly string[],
    private readonly deps: CommitWindowDeps,
    private readonly limits: FlushLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.tracker = new OffsetTracker(offsets);
    this.lastFlush = now();
  }

  /** True once a commit was refused; the delivery must take no further event. */
  get lost(): boolean {
    return this.lostPartition;
  }

  get allDone(): boolean {
    return this.tracker.allDone;
  }

  /** One event's effects are done except its records, which go with the next flush. */
  async settle(s: Settled): Promise<void> {
    this.pending.push(s);
    this.pendingRecords += s.records.length;
    if (
      this.pendingRecords >= this.limits.maxRecords ||
      this.pending.length >= this.limits.maxRecords * 4 ||
      this.now() - this.lastFlush >= this.limits.intervalMs
    ) {
      await this.flush();
    }
  }

  /** Sends pending records, marks their events complete, commits the completed prefix. Serialised. */
  flush(): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (this.lostPartition) return;
      const settled = this.pending.splice(0);
      this.pendingRecords = 0;
      this.lastFlush = this.now();
      await this.send(settled);
      for (const s of settled) await s.afterSend?.();
      for (const s of settled) this.tracker.complete(s.offset);
      const newly = this.tracker.takeCommittable();
      const last = newly[newly.length - 1];
      if (last === undefined) return;
      try {
        await this.deps.commit((BigInt(last) + 1n).toString());
      } catch (err) {
        // The group moved on: another member owns the partition and redoes our uncommitted tail,
        // which is safe because every effect is idempotent.
        this.lostPartition = true;
        this.deps.lost?.(err);
        return;
      }
      this.deps.committed?.(last, newly);
    });
    return this.chain;
  }

  /**
   * Sends the settled events' records in one request. When the broker refuses them outright, each
   * event's records are sent alone to find whose they are, and a refused event's own handler replaces
   * them (its dead letter). A passing failure is thrown: the send was retried already, and the events
   * stay uncommitted for redelivery.
   */
  private async send(settled: Settled[]): Promise<void> {
    const records = settled.flatMap((s) => s.records);
    if (records.length === 0) return;
    try {
      return await this.deps.send(records);
    } catch (err) {
      if (classify(err).retriable) throw err;
    }
    for (const s of settled) {
      if (s.records.length === 0) continue;
      try {
        await this.deps.send([...s.records]);
      } catch (err) {
        const e = classify(err);
        if (e.retriable || !s.item || !this.deps.refused) throw err;
        // The event's own records (and what was to follow them) are replaced by its letter.
        s.afterSend = undefined;
        const instead = await this.deps.refused(s.item, e);
        if (instead.length) await this.deps.send(instead);
      }
    }
  }
}
