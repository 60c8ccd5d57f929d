// The shapes the benchmark passes around and writes to bench/results/*.json. Throughputs are events
// per second, latencies milliseconds. Every contestant of one scenario runs on the same event set,
// topic layout and services, one after the other, in the same process run.

/**
 * `pipeline` runs exactly-once on the configured Kafka client; `pipelineAtLeastOnce` is the same
 * pipeline with KEYFLOW_DELIVERY_GUARANTEE=at-least-once; `pipelineOtherClient` is it exactly-once on
 * the other client (KEYFLOW_KAFKA_CLIENT), so both clients are measured in one run.
 */
export type ContestantName =
  | 'pipeline'
  | 'pipelineAtLeastOnce'
  | 'pipelineOtherClient'
  | 'passthrough'
  | 'storeCeiling'
  | 'incumbent'
  | 'bullmq';

/** The baselines in the order the report and the results list them (the pipeline comes first, apart). */
export const BASELINE_ORDER = [
  'pipelineAtLeastOnce',
  'pipelineOtherClient',
  'passthrough',
  'storeCeiling',
  'incumbent',
  'bullmq',
] as const satisfies readonly Exclude<ContestantName, 'pipeline'>[];

export interface LatencySummary {
  /** How many events the percentiles are over. */
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** One contestant, one load: either a drain of a pre-published backlog (max) or a paced open loop. */
export interface Measurement {
  /** Figures measured beside the run (replay rate, mean delivery size). */
  figures?: Record<string, string | number>;
  contestant: ContestantName;
  mode: 'max' | 'open';
  /** Open loop only: the load asked for, events/s. */
  offeredRate?: number;
  /** Events offered (published or enqueued), poison included. */
  events: number;
  /** Events that reached a terminal outcome (applied, duplicate, dead-lettered, failed). */
  completed: number;
  elapsedMs: number;
  /** completed / elapsed seconds. */
  throughput: number;
  /** From produce (or enqueue) time to the write acknowledged; null when the contestant has none. */
  latency: LatencySummary | null;
  errors: number;
  retries: number;
  deadLetters: number;
  outOfOrder: number;
  /** The tables (or output) equal the ground truth; null when not checked for this measurement. */
  correct: boolean | null;
  /** Why correct is false, or what the figures mean for this contestant. */
  notes: string[];
  /** The time limit ended the measurement before every event completed. */
  timedOut: boolean;
  /** The bench process's RSS at the run's start and its peak during it, MB (every contestant runs in it). */
  rss?: { startMb: number; peakMb: number };
}

/** The figures the JSON keeps per contestant: the max-load run, plus the latencies at the open loads. */
export interface ContestantResult {
  throughput: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  correct: boolean | null;
  errors: number;
  retries: number;
  deadLetters: number;
  outOfOrder: number;
  /** The highest RSS over the contestant's runs, MB; absent in results written before it was measured. */
  peakRssMb?: number | null;
  notes: string[];
  /** Latency at each open-loop load, for the chart. */
  curve: CurvePoint[];
}

export interface CurvePoint {
  offeredRate: number;
  achievedRate: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface TargetCheck {
  name: string;
  /** What the target asks, e.g. "≥ 0.6". */
  wanted: string;
  /** The measured ratio (or null when a term is missing). */
  ratio: number | null;
  met: boolean | null;
}

export interface ScenarioResult {
  scenario: string;
  description: string;
  /** Events in the set (duplicates and poison included), distinct entities, and how they were made. */
  eventSet: {
    events: number;
    entities: number;
    late: number;
    duplicates: number;
    poison: number;
    injectedFailures: number;
    source: string;
  };
  pipeline: ContestantResult;
  baselines: Partial<Record<Exclude<ContestantName, 'pipeline'>, ContestantResult>>;
  /** pipeline / baseline throughput, and the latency ratio at half load. */
  ratios: Record<string, number | null>;
  targets: TargetCheck[];
  /** Where the pipeline's time goes: mean ms per phase of an event, from the engine's timings. */
  profile: Record<string, number> | null;
  /** Single figures worth a line of their own: the growth comparison, the replay rate, settings. */
  figures?: Record<string, string | number>;
  measurements: Measurement[];
  durationMs: number;
}

export interface BenchRun {
  /** The headline scenario's name (the first of the run), so the top level reads as one result. */
  scenario: string;
  suite: string;
  startedAt: string;
  durationMs: number;
  machine: { cpus: number; node: string; platform: string; mongoServer: string };
  pipeline: ContestantResult;
  baselines: ScenarioResult['baselines'];
  ratios: ScenarioResult['ratios'];
  scenarios: ScenarioResult[];
}
