// Offsets that fell out of retention. When a group's committed offset is below its partition's log
// start (retention or DeleteRecords removed records the stage never read), the client answers the
// fetch with OFFSET_OUT_OF_RANGE, applies its reset policy and commits over the old offset, so the
// evidence is gone by the first delivery. The watch therefore looks twice: a scan of committed
// offsets against log starts before the member joins (and again on each join), and per delivery a
// check that it starts where the previous one ended, unless the log start has passed that point.

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
  /** Ranges reported by this process, so a scan and a check never count one range twice. */
  private readonly reported = new Set<string>();

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
   * Compares the group's committed offsets of `topic` (only `partitions`, when given) with the log
   * starts: each committed offset below its log start is a range the reset policy will skip.
   */
  async scan(topic: string, partitions?: readonly number[]): Promise<SkippedRange[]> {
    const [committed, low] = await Promise.all([
      this.port.committed(this.stage, topic),
      this.port.logStart(topic),
    ]);
    const out: SkippedRange[] = [];
    for (const [partition, c] of committed) {
      if (partitions && !partitions.includes(partition)) continue;
      const logStart = low.get(partition);
      if (logStart === undefined || c >= logStart) continue;
      const r = this.range(topic, partition, c, logStart, logStart);
      if (r) out.push(r);
    }
    return out;
  }

  private range(
    topic: string,
    partition: number,
    from: bigint,
    to: bigint,
    logStart: bigint,
  ): SkippedRange | undefined {
    const id = `${topic}:${partition}:${from}`;
    if (this.reported.has(id)) return undefined;
    this.reported.add(id);
    return {
      stage: this.stage,
      topic,
      partition,
      from: from.toString(),
      to: to.toString(),
      logStart: logStart.toString(),
      count: Number(to - from),
      detectedAt: this.now(),
    };
  }

  /**
   * Checks one delivery (offsets `first`..`last`) of a partition; resolves to the skipped range when
   * the delivery starts past records that fell out of retention. Called before anything of the
   * delivery is committed; on the first delivery after a join the committed offset is where the client
   * started (a reset one reads as none: the join's scan has reported that range already).
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
    return range && this.range(topic, partition, range.from, range.to, logStart);
  }
}
