// Offsets that fell out of retention. When a group's committed offset is below its partition's log
// start (retention or DeleteRecords removed records the stage never read), the client answers the
// fetch with OFFSET_OUT_OF_RANGE, applies its reset policy and commits over the old offset, so the
// evidence is gone by the first delivery. The watch therefore looks twice: a scan of committed
// offsets against log starts before the member joins (and again on each join), and per delivery a
// check that it starts where the previous one ended, unless the log start has passed that point.

import { EVENTS, type Instrumentation } from '../instrumentation';
import type { OffsetsReader } from '../kafka/types';
import type { Logger } from '../logger';

/** The reader of committed offsets and log bounds the watch needs (the client's OffsetsReader). */
export type OffsetsPort = Pick<OffsetsReader, 'committed' | 'bounds'>;

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

  private readonly stage: string;
  private readonly groupId: string;
  private readonly port: OffsetsPort;
  private readonly now: () => number;

  constructor(opts: { stage: string; groupId: string; offsets: OffsetsPort; now?: () => number }) {
    this.stage = opts.stage;
    this.groupId = opts.groupId;
    this.port = opts.offsets;
    this.now = opts.now ?? Date.now;
  }

  private async logStarts(topic: string): Promise<Map<number, bigint>> {
    return new Map([...(await this.port.bounds(topic))].map(([p, b]) => [p, b.low]));
  }

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
      this.port.committed(this.groupId, topic),
      this.logStarts(topic),
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
      expected = (await this.port.committed(this.groupId, topic)).get(partition) ?? null;
    }
    this.next.set(at, BigInt(last) + 1n);
    if (expected === null || BigInt(first) <= expected) return undefined;
    const logStart = (await this.logStarts(topic)).get(partition);
    if (logStart === undefined) return undefined;
    const range = skippedRange(expected, BigInt(first), logStart);
    return range && this.range(topic, partition, range.from, range.to, logStart);
  }
}

export interface SkippedReportOptions {
  log: Logger;
  instrumentation: Instrumentation;
  /** Keeps the range durably (with the runner's infrastructure retries). */
  record(range: SkippedRange): Promise<void>;
  startAt: 'earliest' | 'latest';
}

/** Logs a skipped range at error, counts it, and keeps it. */
export function skippedReporter(opts: SkippedReportOptions): (range: SkippedRange) => Promise<void> {
  return async (range) => {
    const { topic, partition, from, to, count } = range;
    opts.log.error(
      { topic, partition, from, to, count },
      `offsets ${from}-${BigInt(to) - 1n} of ${topic}/${partition} fell out of retention before this stage read them; the reset policy (${opts.startAt}) goes on from ${to}`,
    );
    opts.instrumentation.emit(EVENTS.OFFSETS_SKIPPED, {
      stage: range.stage,
      topic,
      partition,
      from,
      to,
      count,
    });
    await opts.record(range);
  };
}

/** The retention check of one stage's group, as the group adapter takes it. */
export function stageRetention(
  opts: { stage: string; groupId: string; offsets: OffsetsPort } & SkippedReportOptions,
): { watch: RetentionWatch; report(range: SkippedRange): Promise<void> } {
  return { watch: new RetentionWatch(opts), report: skippedReporter(opts) };
}
