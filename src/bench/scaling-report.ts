// The scaling run's figures and its Markdown report (`keyflow bench scaling`, rendered again by
// `keyflow figures`): kept apart from the runs that measure them.
import type { KafkaClientName } from './clients';

/** The Kafka client the processor children ran on: the bench's own client names. */
export type ScalingClient = KafkaClientName;

export interface DrainPoint {
  /** The Kafka client the processor children ran on (absent in runs before both were measured: kafkajs). */
  client?: ScalingClient;
  partitions: number;
  instances: number;
  events: number;
  elapsedMs: number;
  throughput: number;
  /** Throughput against the 1-instance drain of the same partition count in this run. */
  vsOne: number | null;
  correct: boolean;
}

export interface JoinPause {
  /** The Kafka client the processor children ran on (absent in runs before both were measured: kafkajs). */
  client?: ScalingClient;
  partitions: number;
  what: string;
  stableMs: number | null;
  pauseMs: number;
  /** The longest gap with no change under way, for scale: what the sampling and batching alone give. */
  normalGapMs: number;
}

export interface RollingResult {
  /** The Kafka client the processor children ran on (absent in runs before both were measured: kafkajs). */
  client?: ScalingClient;
  variant: string;
  steps: { stepMs: number | null; pauseMs: number }[];
  totalMs: number;
  totalPauseMs: number;
  correct: boolean;
}

export interface ScalingRun {
  startedAt: string;
  durationMs: number;
  machine: { cpus: number; node: string; loadavg: number[] };
  pacedRate: number;
  /** The clients measured, in order (absent before both were: kafkajs alone). */
  clients?: ScalingClient[];
  drains: DrainPoint[];
  joins: JoinPause[];
  rolling: RollingResult[];
  /** Instances started again, and the like. */
  notes: string[];
}

/** The client column: kafkajs speaks classic eager rebalances, platformatic KIP-848 (incremental). */
function clientOf(row: { client?: ScalingClient }): string {
  return (row.client ?? 'kafkajs') === 'kafkajs' ? 'kafkajs (eager)' : 'platformatic (KIP-848)';
}

/** The report's Markdown: the curve, the join pauses and the rolling restarts, as measured. */
export function scalingReport(run: ScalingRun): string {
  const lines = [
    `# Scaling curve, ${run.startedAt}`,
    '',
    `${run.machine.cpus} CPUs (load average at the start ${run.machine.loadavg.map((x) => x.toFixed(1)).join(', ')}), Node ${run.machine.node}. ` +
      'Every instance is a real processor child on this one machine: the curve is bound by its CPUs, the pauses are not.',
    '',
    '## Throughput: one backlog drained by 1, 2 and 3 instances',
    '',
    '| client | partitions | instances | events | drain (s) | events/s | vs 1 instance | exact |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |',
    ...run.drains.map(
      (d) =>
        `| ${clientOf(d)} | ${d.partitions} | ${d.instances} | ${d.events} | ${(d.elapsedMs / 1000).toFixed(1)} | ${d.throughput} | ${d.vsOne ?? '—'} | ${d.correct ? 'yes' : 'NO'} |`,
    ),
    '',
    `## Rebalance pause of each join, under a paced ${run.pacedRate} events/s`,
    '',
    '| client | partitions | change | join → Stable (ms) | longest pause in effects (ms) | longest gap without a change (ms) |',
    '| --- | ---: | --- | ---: | ---: | ---: |',
    ...run.joins.map(
      (j) =>
        `| ${clientOf(j)} | ${j.partitions} | ${j.what} | ${j.stableMs ?? 'never'} | ${j.pauseMs} | ${j.normalGapMs} |`,
    ),
    '',
    `## Rolling restart of 3 instances over 6 partitions, under a paced ${run.pacedRate} events/s`,
    '',
    'Each step stops one instance, starts its replacement and waits until both groups are Stable with 3 members.',
    '',
    '| client | settings | step → Stable (ms) | pause per step (ms) | total (ms) | total pause (ms) | exact |',
    '| --- | --- | --- | --- | ---: | ---: | :---: |',
    ...run.rolling.map(
      (r) =>
        `| ${clientOf(r)} | ${r.variant} | ${r.steps.map((s) => s.stepMs ?? 'never').join(', ')} | ${r.steps.map((s) => s.pauseMs).join(', ')} | ${r.totalMs} | ${r.totalPauseMs} | ${r.correct ? 'yes' : 'NO'} |`,
    ),
    '',
    ...run.notes.map((n) => `- ${n}`),
    '',
  ];
  return lines.join('\n');
}
