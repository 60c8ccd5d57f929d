// The commit window of one delivery: events settle out of order (keys run apart), their emitted
// records wait for the next flush, and a flush sends them, then commits the completed prefix of
// offsets — never past an event whose effects (state, records, dead letter) are not all done.
import type { WireRecord } from '../producers/types';
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
}

export interface FlushLimits {
  /** Flush when this many records are pending (offsets: four times as many). */
  maxRecords: number;
  intervalMs: number;
}

export class CommitWindow {
  private readonly tracker: OffsetTracker;
  private pendingOffsets: string[] = [];
  private pendingRecords: WireRecord[] = [];
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
  async settle(offset: string, records: readonly WireRecord[]): Promise<void> {
    this.pendingOffsets.push(offset);
    this.pendingRecords.push(...records);
    if (
      this.pendingRecords.length >= this.limits.maxRecords ||
      this.pendingOffsets.length >= this.limits.maxRecords * 4 ||
      this.now() - this.lastFlush >= this.limits.intervalMs
    ) {
      await this.flush();
    }
  }

  /** Sends pending records, marks their events complete, commits the completed prefix. Serialised. */
  flush(): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (this.lostPartition) return;
      const records = this.pendingRecords.splice(0);
      const offsets = this.pendingOffsets.splice(0);
      this.lastFlush = this.now();
      if (records.length) await this.deps.send(records);
      for (const o of offsets) this.tracker.complete(o);
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
}
