// Prometheus metrics of the stages, maintained from instrumentation events so the hot loop never calls
// into metrics code. createMetricsRegistry() adds the default process metrics; /metrics serves the registry.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EVENTS, type HandledEvent, type Instrumentation } from '../instrumentation';

export const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** A registry with Node's default process metrics (CPU, memory, event loop lag, GC). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** The steps of an action stage, in order, with the field marking when each began. */
const STEPS = [
  ['read', 'readStartedAt'],
  ['decide', 'decideStartedAt'],
  ['write', 'writeStartedAt'],
  ['emit', 'emitStartedAt'],
] as const satisfies readonly (readonly [string, keyof HandledEvent])[];

/**
 * Seconds per step: a step lasts from its start to the next step that ran (or the finish), so a
 * skipped step (no plan → no write) is absent rather than zero. `total` is consumed → finished and
 * `end_to_end` is occurredAt → finished, which includes time spent upstream and waiting in Kafka.
 */
export function stepDurations(e: HandledEvent): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < STEPS.length; i++) {
    const start = e[STEPS[i]![1]];
    if (start === undefined) continue;
    let end = e.finishedAt;
    for (let j = i + 1; j < STEPS.length; j++) {
      const next = e[STEPS[j]![1]];
      if (next !== undefined) {
        end = next;
        break;
      }
    }
    out[STEPS[i]![0]] = Math.max(0, end - start) / 1000;
  }
  out.total = Math.max(0, e.finishedAt - e.consumedAt) / 1000;
  // Producer clocks may run ahead of ours; a negative age is clock skew, shown as zero.
  if (e.occurredAt !== undefined) out.end_to_end = Math.max(0, e.finishedAt - e.occurredAt) / 1000;
  return out;
}

export interface StageMetrics {
  events: Counter<'stage' | 'outcome'>;
  errors: Counter<'stage' | 'code'>;
  retries: Counter<'stage'>;
  deadLetters: Counter<'stage'>;
  outOfOrder: Counter<'stage' | 'tenant'>;
  outOfOrderCorrected: Counter<'stage' | 'tenant'>;
  latency: Histogram<'stage' | 'step'>;
  lanesBusy: Gauge<'stage' | 'partition'>;
  settingsUpdates: Counter<'result'>;
  offsetsSkipped: Counter<'stage' | 'topic' | 'partition'>;
  /** Stops listening to instrumentation; the metrics stay registered. Safe to call twice. */
  stop(): void;
}

/**
 * Registers the stage metrics on `registry` (once per registry) and keeps them from `instrumentation`.
 * An error is counted per failed attempt: each `stage.event.retry`, plus the final failure carried by
 * a `stage.event.handled` with an errorCode (dead-lettered or parked).
 */
export function registerStageMetrics(registry: Registry, instrumentation: Instrumentation): StageMetrics {
  const registers = [registry];
  const events = new Counter({
    name: 'keyflow_events_total',
    help: 'Events handled, by stage and outcome (applied, duplicate, skipped, dead-lettered, parked).',
    labelNames: ['stage', 'outcome'] as const,
    registers,
  });
  const errors = new Counter({
    name: 'keyflow_errors_total',
    help: 'Failed handling attempts, by stage and Keyflow error code.',
    labelNames: ['stage', 'code'] as const,
    registers,
  });
  const retries = new Counter({
    name: 'keyflow_retries_total',
    help: 'Retries scheduled after a retriable failure.',
    labelNames: ['stage'] as const,
    registers,
  });
  const deadLetters = new Counter({
    name: 'keyflow_dead_letters_total',
    help: 'Events sent to the stage dead-letter topic.',
    labelNames: ['stage'] as const,
    registers,
  });
  const outOfOrder = new Counter({
    name: 'keyflow_out_of_order_total',
    help: 'Events older than what was already applied for their entity.',
    labelNames: ['stage', 'tenant'] as const,
    registers,
  });
  // "Corrected" as the ops page counts it: a late event the stage still applied through its
  // order-independent fold or version guard, so the table ended as if it had arrived in order.
  const outOfOrderCorrected = new Counter({
    name: 'keyflow_out_of_order_corrected_total',
    help: 'Out-of-order events the stage applied correctly anyway (order-independent fold or version guard).',
    labelNames: ['stage', 'tenant'] as const,
    registers,
  });
  const latency = new Histogram({
    name: 'keyflow_stage_latency_seconds',
    help: 'Seconds per step (read, decide, write, emit), consumed to finished (total), occurredAt to finished (end_to_end).',
    labelNames: ['stage', 'step'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const lanesBusy = new Gauge({
    name: 'keyflow_lanes_busy',
    help: 'Key lanes currently working, per stage and partition (per-event stages; a batch stage folds its keys).',
    labelNames: ['stage', 'partition'] as const,
    registers,
  });
  const settingsUpdates = new Counter({
    name: 'keyflow_settings_updates_total',
    help: 'tenant-settings records folded into the cache, by result (applied or rejected).',
    labelNames: ['result'] as const,
    registers,
  });
  const offsetsSkipped = new Counter({
    name: 'keyflow_offsets_skipped_total',
    help: 'Input offsets a stage never read because they fell out of retention before it got to them',
    labelNames: ['stage', 'topic', 'partition'] as const,
    registers,
  });

  const offs = [
    instrumentation.on(EVENTS.EVENT_HANDLED, (e) => {
      events.inc({ stage: e.stage, outcome: e.outcome });
      if (e.errorCode !== undefined) errors.inc({ stage: e.stage, code: e.errorCode });
      if (e.outOfOrder) outOfOrder.inc({ stage: e.stage, tenant: e.tenantId ?? 'none' });
      if (e.outOfOrder && e.outcome === 'applied') {
        outOfOrderCorrected.inc({ stage: e.stage, tenant: e.tenantId ?? 'none' });
      }
      for (const [step, seconds] of Object.entries(stepDurations(e)))
        latency.observe({ stage: e.stage, step }, seconds);
    }),
    instrumentation.on(EVENTS.EVENT_RETRY, (r) => {
      retries.inc({ stage: r.stage });
      errors.inc({ stage: r.stage, code: r.code });
    }),
    instrumentation.on(EVENTS.EVENT_DEAD_LETTERED, (d) => deadLetters.inc({ stage: d.stage })),
    // A stage's retry and dead-letter counters exist at 0 from its start: rate() needs a sample
    // before the first increment, or the first dead letter after a start is never seen as a rate.
    instrumentation.on(EVENTS.STAGE_START, (s) => {
      retries.inc({ stage: s.stage }, 0);
      deadLetters.inc({ stage: s.stage }, 0);
    }),
    instrumentation.on(EVENTS.LANES_BUSY, (l) =>
      lanesBusy.set({ stage: l.stage, partition: String(l.partition) }, l.busy),
    ),
    instrumentation.on(EVENTS.OFFSETS_SKIPPED, (r) =>
      offsetsSkipped.inc({ stage: r.stage, topic: r.topic, partition: String(r.partition) }, r.count),
    ),
    instrumentation.on(EVENTS.SETTINGS_APPLIED, () => settingsUpdates.inc({ result: 'applied' })),
    instrumentation.on(EVENTS.SETTINGS_REJECTED, () => settingsUpdates.inc({ result: 'rejected' })),
  ];
  let stopped = false;
  return {
    events,
    errors,
    retries,
    deadLetters,
    outOfOrder,
    outOfOrderCorrected,
    latency,
    lanesBusy,
    settingsUpdates,
    offsetsSkipped,
    stop() {
      if (stopped) return;
      stopped = true;
      for (const off of offs) off();
    },
  };
}
