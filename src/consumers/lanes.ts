// Key lanes inside a partition: messages of one key run strictly in order, different keys run
// concurrently up to a bound, and the committable offset is the end of the completed prefix.

/** Groups items by key, keeping each key's order; lanes are ordered by their first item. */
export function groupByKey<T>(items: readonly T[], keyOf: (item: T) => string): T[][] {
  const lanes = new Map<string, T[]>();
  for (const item of items) {
    const k = keyOf(item);
    let lane = lanes.get(k);
    if (!lane) lanes.set(k, (lane = []));
    lane.push(item);
  }
  return [...lanes.values()];
}

/**
 * Tracks which offsets of a batch are complete. Offsets are Kafka's decimal strings; the batch may
 * have gaps (compaction, transactions), so we track the batch's own offsets in order.
 */
export class OffsetTracker {
  private readonly order: bigint[];
  private readonly done = new Set<bigint>();
  private prefix = 0; // count of leading offsets known complete

  constructor(offsets: readonly string[]) {
    this.order = offsets.map((o) => BigInt(o)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  complete(offset: string): void {
    this.done.add(BigInt(offset));
    while (this.prefix < this.order.length && this.done.has(this.order[this.prefix]!)) this.prefix++;
  }

  private taken = 0; // count of leading offsets already handed out by takeCommittable()

  /** Offsets that became committable since the last call, in order (for provenance's committedAt). */
  takeCommittable(): string[] {
    const out = this.order.slice(this.taken, this.prefix).map((o) => o.toString());
    this.taken = this.prefix;
    return out;
  }

  /** The last offset such that it and every offset before it in the batch are complete. */
  committable(): string | undefined {
    return this.prefix === 0 ? undefined : this.order[this.prefix - 1]!.toString();
  }

  get allDone(): boolean {
    return this.prefix === this.order.length;
  }
}

/**
 * Runs every lane with at most `concurrency` lanes in flight; inside a lane, items run one after
 * another. When `keepGoing()` turns false, lanes stop taking their next item (in-flight items finish).
 * The first error thrown by `work` stops all lanes and is rethrown once every in-flight item settled.
 */
export async function runLanes<T>(
  lanes: readonly T[][],
  concurrency: number,
  work: (item: T) => Promise<void>,
  keepGoing: () => boolean = () => true,
  onBusy?: (busy: number) => void,
): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  let busy = 0;
  const worker = async () => {
    while (!failure && keepGoing() && next < lanes.length) {
      const lane = lanes[next++]!;
      busy++;
      onBusy?.(busy);
      try {
        for (const item of lane) {
          if (failure || !keepGoing()) break;
          await work(item);
        }
      } catch (err) {
        failure ??= { err };
      } finally {
        busy--;
        onBusy?.(busy);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, lanes.length)) }, worker));
  if (failure) throw failure.err;
}
