// The commit window of one delivery: events settle out of order (keys run apart), their emitted
// records (their own, or their dead-letter records) wait for the next flush, and a flush settles them
// with the completed prefix of offsets — never past an event whose effects are not all done.
// Settling a delivery is the one call `flush`, in one of two ways:
// - at-least-once: every pending record is sent, then the prefix is committed. What must follow the
//   records (resolving a re-driven letter) runs between the two: a failure there leaves the offset
//   uncommitted, so the event is redone.
// - exactly-once (`transact`): only the prefix's records go, with its offset, in one Kafka
//   transaction (transaction-flush.ts), so "the records of offset X are visible" holds exactly when
//   "the group's offset is past X". What follows the records runs once the transaction committed.
import { classify, type KeyflowError } from '../errors';
import type { WireRecord } from '../producers/types';
import type { InFlight } from './envelope';
import { OffsetTracker } from './lanes';
import { transactPrefix } from './transaction-flush';

export interface CommitWindowDeps {
  /** Sends records, acknowledged by the broker before it resolves. */
  send(records: WireRecord[]): Promise<void>;
  /** Commits `next` (one past the last completed offset). Throws when the partition was revoked. */
  commit(next: string): Promise<void>;
  /**
   * Exactly-once: sends `records` and commits `next` in one transaction; it commits, or aborts and
   * throws (PARTITION_FENCED when another owner fenced it). When present, send and commit are unused.
   */
  transact?(records: WireRecord[], next: string): Promise<void>;
  /** The offset after the batch's last record, control records included: committed once all is done. */
  end?: string;
  /** Called after each successful commit with the offsets it newly covers. */
  committed?(last: string, offsets: string[]): void;
  /** Called once when a commit is refused: the partition belongs to another member now. */
  lost?(err: unknown): void;
  /** Exactly-once: what follows a committed transaction failed; the commit stands. */
  afterCommitFailed?(err: unknown): void;
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
  /**
   * Runs once the event's records are sent: before its offset is committed (at-least-once), or once
   * the transaction holding both committed (exactly-once); never if they are not.
   */
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
  /** The offset this window last committed (exclusive); undefined before its first commit. */
  private committedNext: bigint | undefined;

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

  /** Settles what is pending and commits the completed prefix. Serialised; a failure is thrown. */
  flush(): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (this.lostPartition) return;
      this.lastFlush = this.now();
      if (this.deps.transact) await this.flushTransaction(this.deps.transact);
      else await this.flushThenCommit();
    });
    return this.chain;
  }

  /** At-least-once: sends every pending record, marks their events complete, commits the prefix. */
  private async flushThenCommit(): Promise<void> {
    const settled = this.take(() => true);
    await this.send(settled);
    for (const s of settled) await s.afterSend?.();
    for (const s of settled) this.tracker.complete(s.offset);
    const newly = this.tracker.takeCommittable();
    const next = this.commitPoint(newly);
    if (next === undefined) return;
    try {
      await this.deps.commit(next.toString());
    } catch (err) {
      // The group moved on: another member owns the partition and redoes our uncommitted tail,
      // which is safe because every effect is idempotent.
      this.lose(err);
      return;
    }
    this.markCommitted(next, newly);
  }

  /**
   * Exactly-once: the records of the completed prefix and its offset in one transaction. Records of
   * events settled past the first unfinished offset stay pending for a later flush, so nothing is
   * visible before its offset is committed. A failed transaction is thrown (nothing of it is visible;
   * the delivery's uncommitted tail is fetched again); a fenced one loses the partition.
   */
  private async flushTransaction(transact: NonNullable<CommitWindowDeps['transact']>): Promise<void> {
    for (const s of this.pending) this.tracker.complete(s.offset);
    const newly = this.tracker.takeCommittable();
    const next = this.commitPoint(newly);
    if (next === undefined) return;
    const prefix = new Set(newly);
    const settled = this.take((s) => prefix.has(s.offset));
    const outcome = await transactPrefix(settled, next, { ...this.deps, transact });
    if (outcome.lost) {
      this.lose(outcome.lost);
      return;
    }
    this.markCommitted(next, newly);
    for (const s of settled) {
      try {
        await s.afterSend?.();
      } catch (err) {
        this.deps.afterCommitFailed?.(err);
      }
    }
  }

  /** Takes the pending entries `which` selects out of the window. */
  private take(which: (s: Settled) => boolean): Settled[] {
    const taken = this.pending.filter(which);
    this.pending = this.pending.filter((s) => !which(s));
    this.pendingRecords = this.pending.reduce((n, s) => n + s.records.length, 0);
    return taken;
  }

  /**
   * Where a commit goes: one past the newly completed prefix, or the batch's end (past its trailing
   * control records) once every offset is done; undefined when that is not beyond the last commit.
   */
  private commitPoint(newly: readonly string[]): bigint | undefined {
    const last = newly[newly.length - 1];
    let next = last === undefined ? undefined : BigInt(last) + 1n;
    if (this.tracker.allDone && this.deps.end !== undefined) {
      const end = BigInt(this.deps.end);
      if (next === undefined || end > next) next = end;
    }
    if (next === undefined || (this.committedNext !== undefined && next <= this.committedNext))
      return undefined;
    return next;
  }

  private markCommitted(next: bigint, newly: string[]): void {
    this.committedNext = next;
    const last = newly[newly.length - 1];
    if (last !== undefined) this.deps.committed?.(last, newly);
  }

  private lose(err: unknown): void {
    this.lostPartition = true;
    this.deps.lost?.(err);
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
