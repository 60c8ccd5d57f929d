// Offsets that fell out of retention. When a group's committed offset is below its partition's log
// start (retention or DeleteRecords removed records the stage never read), the client answers the
// fetch with OFFSET_OUT_OF_RANGE and silently applies its reset policy. The watch notices the jump:
// per partition it knows where the next record should be (the committed offset on the first delivery
// after a join, then the end of the previous delivery), and a delivery that starts beyond it while the
// log start has passed it reports the skipped range instead of letting it vanish.

/** The broker's view of a group and its partitions (group.ts's kafkaOffsets implements it). */
export interface OffsetsPort {
  /** The group's committed offset per partition of `topic`; a partition without one is absent. */
  committed(groupId: string, topic: string): Promise<Map<number, bigint>>;
  /** The first offset the partition still holds, per partition of `topic`. */
  logStart(topic: string): Promise<Map<number, bigint>>;
}

/** Offsets `from` (inclusive) to `to` (exclusive) of a partition that the stage never read. */
export interface SkippedRange {
  stage: string;
  topic: string;
  partition: number;
  from: string;
  to: string;
  /** The partition's log start offset when the skip was seen. */
  logStart: string;
  count: number;
  detectedAt: number;
}

/**
 * The range a delivery starting at `first` skipped, if any: records from the expected position up to
 * `first` are gone only when the log start has passed the expected position (a gap below the log
 * start is retention; a gap above it is compaction or transaction markers, which lose nothing).
 */
export function skippedRange(
  expected: bigint,
  first: bigint,
  logStart: bigint,
): { from: bigint; to: bigint } | undefined {
  if (first <= expected || logStart <= expected) return undefined;
  return { from: expected, to: first };
}

/** Where each partition of one stage's group should continue, and the check of each delivery against it. */
export class RetentionWatch {
  private readonly next = new Map<string, bigint | null>();

  constructor(
    private readonly stage: string,
    private readonly port: OffsetsPort,
    private readonly now: () => number = Date.now,
  ) {}

  /** After a (re)join the committed offsets are the truth again: partitions may have moved. */
  reset(): void {
    this.next.clear();
  }

  /**
   * Checks one delivery (offsets `first`..`last`) of a partition; resolves to the skipped range when
   * the delivery starts past records that fell out of retention. Called before anything of the
   * delivery is committed, so on the first delivery after a join the committed offset is still the
   * one the client started from.
   */
  async check(
    topic: string,
    partition: number,
    first: string,
    last: string,
  ): Promise<SkippedRange | undefined> {
    const at = `${topic}:${partition}`;
    let expected = this.next.get(at);
    if (expected === undefined) {
      // A partition never committed starts where the reset policy says: nothing was skipped.
      expected = (await this.port.committed(this.stage, topic)).get(partition) ?? null;
    }
    this.next.set(at, BigInt(last) + 1n);
    if (expected === null || BigInt(first) <= expected) return undefined;
    const logStart = (await this.port.logStart(topic)).get(partition);
    if (logStart === undefined) return undefined;
    const range = skippedRange(expected, BigInt(first), logStart);
    if (!range) return undefined;
    return {
      stage: this.stage,
      topic,
      partition,
      from: range.from.toString(),
      to: range.to.toString(),
      logStart: logStart.toString(),
      count: Number(range.to - range.from),
      detectedAt: this.now(),
    };
  }
}
