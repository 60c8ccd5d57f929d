// Consumer lag of the stage groups, polled from Kafka on an interval: committed offsets against end
// offsets per partition, the age of the oldest unprocessed message, and partitions that stopped moving.
import type { Registry } from 'prom-client';
import { Gauge } from 'prom-client';
import { classify } from '../errors';
import type { OffsetsReader } from '../kafka/types';
import type { Logger } from '../logger';
import type { CheckResult } from './health';

/** The offsets the collector reads: the Kafka client's one OffsetsReader (a fake in unit tests). */
export type LagOffsets = Pick<OffsetsReader, 'committed' | 'bounds' | 'groups'>;

export interface LagGroup {
  /** The consumer group id: `<applicationId>.<stage>` (topology/names.ts). */
  group: string;
  /** The stage the group runs (default: the group id). */
  stage?: string;
  topics: string[];
}

export interface LagOptions {
  /** Connected on first use; its owner closes it. */
  offsets: LagOffsets;
  groups: LagGroup[];
  registry: Registry;
  log: Logger;
  /** How often offsets are polled (KEYFLOW_LAG_INTERVAL_MS). */
  intervalMs: number;
  /** A partition with lag and no committed progress for this long is stalled (KEYFLOW_STALL_AFTER_MS). */
  stallAfterMs: number;
  /** Clock, for a deterministic test of the timeline arithmetic. */
  now?: () => number;
}

export interface PartitionLag {
  consumergroup: string;
  topic: string;
  partition: number;
  /** Next offset the group will read; null while the group has committed nothing on the partition. */
  committed: string | null;
  end: string;
  lag: number;
  /** Age of the oldest unprocessed message in seconds; 0 without lag. */
  lagSeconds: number;
  /** Committed offsets per second over the last 10 s (or three poll intervals, if longer). */
  ratePerSec: number;
  stalled: boolean;
  /** How long the partition has had lag without committed progress (0 when it moves). */
  stuckForMs: number;
}

export interface GroupLag {
  consumergroup: string;
  stage: string;
  topics: string[];
  state: string;
  members: number;
  partitions: PartitionLag[];
}

export interface LagSnapshot {
  /** When the last successful poll finished; undefined before the first. */
  at: number | undefined;
  /** Why the last poll failed, when it did; the previous figures stay. */
  error: string | undefined;
  groups: GroupLag[];
}

/**
 * When each end offset of a partition was seen: `end` first at `firstAt`, still at `lastAt`. A message
 * at offset o with prev.end <= o < next.end was written between prev.lastAt and next.firstAt.
 */
interface EndSample {
  end: bigint;
  firstAt: number;
  lastAt: number;
}

/** Samples kept per partition; past it the oldest go and a very old backlog reads as "at least". */
const MAX_SAMPLES = 2000;

interface Progress {
  committed: bigint | null;
  lastProgressAt: number;
  /** (time, committed) over the rate window: commits come in bursts, one interval alone would flicker. */
  history: { at: number; committed: bigint }[];
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;
const gtpKey = (group: string, topic: string, partition: number) =>
  `${group}\u0000${topic}\u0000${partition}`;

/**
 * Polls the groups' offsets and keeps the lag gauges. The age of the oldest unprocessed message is read
 * off a timeline of end offsets this collector records itself (as kafka-lag-exporter does): fetching the
 * message at the committed offset would take a consumer per poll, and the runner's own instrumentation
 * only sees partitions this instance owns, while the timeline covers every member of the group.
 * A backlog older than the collector is reported as old as the collector's first poll: a lower bound.
 */
export class LagCollector {
  private readonly lagGauge: Gauge<'consumergroup' | 'topic' | 'partition'>;
  private readonly secondsGauge: Gauge<'consumergroup' | 'topic' | 'partition'>;
  private readonly stalledGauge: Gauge<'consumergroup' | 'topic' | 'partition'>;
  private readonly membersGauge: Gauge<'consumergroup'>;
  private readonly timelines = new Map<string, EndSample[]>();
  private readonly progress = new Map<string, Progress>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private failing = false;
  private last: LagSnapshot = { at: undefined, error: undefined, groups: [] };

  constructor(private readonly opts: LagOptions) {
    this.now = opts.now ?? Date.now;
    const labelNames = ['consumergroup', 'topic', 'partition'] as const;
    const registers = [opts.registry];
    this.lagGauge = new Gauge({
      name: 'kafka_consumergroup_lag',
      help: 'Messages not yet committed by the group: end offset minus committed offset, per partition.',
      labelNames,
      registers,
    });
    this.secondsGauge = new Gauge({
      name: 'keyflow_consumergroup_lag_seconds',
      help: 'Age in seconds of the oldest message the group has not committed, per partition.',
      labelNames,
      registers,
    });
    this.stalledGauge = new Gauge({
      name: 'keyflow_partition_stalled',
      help: '1 while a partition has lag and its committed offset has not moved for KEYFLOW_STALL_AFTER_MS.',
      labelNames,
      registers,
    });
    this.membersGauge = new Gauge({
      name: 'kafka_consumergroup_members',
      help: 'Members of the consumer group; 0 means nobody consumes its topics.',
      labelNames: ['consumergroup'] as const,
      registers,
    });
  }

  get groups(): readonly LagGroup[] {
    return this.opts.groups;
  }

  /** Polls once, then keeps polling every intervalMs. */
  start(): Promise<void> {
    this.starting ??= (async () => {
      await this.poll();
      this.schedule();
    })();
    return this.starting;
  }

  /** Stops polling; the gauges keep their last values. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearTimeout(this.timer);
      await this.starting?.catch(() => undefined);
      await this.polling;
      clearTimeout(this.timer);
    })();
    return this.stopping;
  }

  /** The figures of the last poll. */
  snapshot(): LagSnapshot {
    return this.last;
  }

  /** Readiness: not ready while any partition is stalled, naming each one. */
  readiness(): CheckResult {
    const { at, error, groups } = this.last;
    if (at === undefined) return { ok: true, detail: error ? `lag unknown: ${error}` : 'first poll pending' };
    const stalled = groups.flatMap((g) => g.partitions.filter((p) => p.stalled));
    if (stalled.length === 0) {
      return { ok: true, detail: error ? `last lag poll failed: ${error}` : 'no stalled partition' };
    }
    const list = stalled
      .map(
        (p) =>
          `${p.consumergroup} ${p.topic}/${p.partition} lag ${p.lag} for ${Math.round(p.stuckForMs / 1000)}s`,
      )
      .join('; ');
    return { ok: false, detail: `stalled: ${list}` };
  }

  /** One poll now; concurrent callers share it. Never rejects: a failure is kept in the snapshot. */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private schedule(): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      void this.poll().then(() => this.schedule());
    }, this.opts.intervalMs);
    // Polling must not keep a finishing process alive; stop() ends it properly.
    this.timer.unref();
  }

  private async pollOnce(): Promise<void> {
    const { offsets, groups, log } = this.opts;
    if (groups.length === 0) {
      this.last = { at: this.now(), error: undefined, groups: [] };
      return;
    }
    try {
      const topics = [...new Set(groups.flatMap((g) => g.topics))];
      const [ends, committed, described] = await Promise.all([
        Promise.all(topics.map(async (t) => [t, await offsets.bounds(t)] as const)),
        Promise.all(
          groups.map(async (g) => {
            const perTopic = await Promise.all(
              g.topics.map(async (t) => [t, await offsets.committed(g.group, t)] as const),
            );
            return [g.group, new Map(perTopic)] as const;
          }),
        ),
        offsets.groups(groups.map((g) => g.group)),
      ]);
      const at = this.now();
      const endsByTopic = new Map(ends);
      for (const [topic, parts] of ends) {
        for (const [partition, b] of parts) this.recordEnd(topic, partition, b.high, at);
      }
      const committedByGroup = new Map(committed);
      const result: GroupLag[] = groups.map((g) => {
        const desc = described.get(g.group);
        const members = desc?.members ?? 0;
        this.membersGauge.set({ consumergroup: g.group }, members);
        const byTopic = committedByGroup.get(g.group);
        const partitions = g.topics.flatMap((topic) =>
          [...(endsByTopic.get(topic) ?? new Map<number, { low: bigint; high: bigint }>())].map(([p, b]) =>
            this.measure(g.group, topic, p, b.high, b.low, byTopic?.get(topic)?.get(p), at),
          ),
        );
        return {
          consumergroup: g.group,
          stage: g.stage ?? g.group,
          topics: g.topics,
          state: desc?.state ?? 'Unknown',
          members,
          partitions,
        };
      });
      this.prune(result);
      this.last = { at, error: undefined, groups: result };
      if (this.failing) log.info('lag poll recovered');
      this.failing = false;
    } catch (err) {
      const e = classify(err);
      // One warning per failure streak: Kafka being down is reported loudly elsewhere.
      if (!this.failing) log.warn({ err: e, code: e.code }, 'lag poll failed; keeping the last figures');
      this.failing = true;
      this.last = { ...this.last, error: `${e.code}: ${e.message}` };
    }
  }

  private measure(
    group: string,
    topic: string,
    partition: number,
    end: bigint,
    low: bigint,
    found: bigint | undefined,
    at: number,
  ): PartitionLag {
    const key = gtpKey(group, topic, partition);
    // None: the group has committed nothing here yet. Stage groups start from the beginning, so
    // everything still retained counts as unprocessed.
    const committed = found ?? null;
    const next = committed ?? low;
    const lag = end > next ? Number(end - next) : 0;
    const prev = this.progress.get(key);
    let lastProgressAt = at;
    if (prev) {
      const moved = committed !== null && (prev.committed === null || committed !== prev.committed);
      lastProgressAt = moved || lag === 0 ? at : prev.lastProgressAt;
    }
    const window = Math.max(10_000, 3 * this.opts.intervalMs);
    const history = (prev?.history ?? []).filter((h) => at - h.at <= window);
    if (committed !== null) history.push({ at, committed });
    const first = history[0];
    const rate =
      first && committed !== null && at > first.at
        ? Number(committed - first.committed) / ((at - first.at) / 1000)
        : 0;
    this.progress.set(key, { committed, lastProgressAt, history });
    const stuckForMs = lag > 0 ? at - lastProgressAt : 0;
    const stalled = lag > 0 && stuckForMs >= this.opts.stallAfterMs;
    const lagSeconds = lag > 0 ? Math.max(0, at - this.writtenAt(topic, partition, next)) / 1000 : 0;
    const labels = { consumergroup: group, topic, partition: String(partition) };
    this.lagGauge.set(labels, lag);
    this.secondsGauge.set(labels, lagSeconds);
    this.stalledGauge.set(labels, stalled ? 1 : 0);
    return {
      consumergroup: group,
      topic,
      partition,
      committed: committed === null ? null : committed.toString(),
      end: end.toString(),
      lag,
      lagSeconds,
      ratePerSec: rate,
      stalled,
      stuckForMs,
    };
  }

  private recordEnd(topic: string, partition: number, end: bigint, at: number): void {
    const key = tpKey(topic, partition);
    let samples = this.timelines.get(key);
    if (!samples) this.timelines.set(key, (samples = []));
    const latest = samples[samples.length - 1];
    if (latest && latest.end === end) latest.lastAt = at;
    else samples.push({ end, firstAt: at, lastAt: at });
    if (samples.length > MAX_SAMPLES) samples.splice(0, samples.length - MAX_SAMPLES);
  }

  /** When the message at `offset` was written, interpolated between the samples around it. */
  private writtenAt(topic: string, partition: number, offset: bigint): number {
    const samples = this.timelines.get(tpKey(topic, partition)) ?? [];
    const i = samples.findIndex((s) => s.end > offset);
    if (i < 0) return this.now();
    const after = samples[i]!;
    const before = samples[i - 1];
    // Already there at the first sample: written before we started looking.
    if (!before) return after.firstAt;
    const span = Number(after.end - before.end);
    const fraction = Number(offset - before.end + 1n) / span;
    return before.lastAt + fraction * (after.firstAt - before.lastAt);
  }

  /** Drops samples no group needs any more: those wholly below every group's committed offset. */
  private prune(groups: GroupLag[]): void {
    const lowest = new Map<string, bigint>();
    for (const g of groups) {
      for (const p of g.partitions) {
        const key = tpKey(p.topic, p.partition);
        const c = p.committed === null ? -1n : BigInt(p.committed);
        const cur = lowest.get(key);
        if (cur === undefined || c < cur) lowest.set(key, c);
      }
    }
    for (const [key, min] of lowest) {
      const samples = this.timelines.get(key);
      if (!samples) continue;
      // Keep the last sample at or below `min`: it bounds when the message at `min` was written.
      let drop = 0;
      while (drop + 1 < samples.length && samples[drop + 1]!.end <= min) drop++;
      if (drop > 0) samples.splice(0, drop);
    }
  }
}
