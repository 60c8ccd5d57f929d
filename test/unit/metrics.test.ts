// Stage metrics follow the instrumentation events alone: outcomes, errors per failed attempt, retries,
// dead letters, out-of-order per tenant, per-step latency (skipped steps absent) and busy lanes.
import { Registry } from 'prom-client';
import { EVENTS, Instrumentation, type HandledEvent } from '../../src/instrumentation';
import { registerStageMetrics, stepDurations } from '../../src/monitoring/metrics';

function handled(over: Partial<HandledEvent> = {}): HandledEvent {
  return {
    stage: 'book',
    topic: 'appointments',
    partition: 0,
    offset: '10',
    key: 'a1',
    eventId: 'e1',
    traceId: undefined,
    tenantId: 't1',
    occurredAt: 500,
    consumedAt: 1000,
    readStartedAt: 1000,
    decideStartedAt: 1010,
    writeStartedAt: 1012,
    emitStartedAt: 1040,
    finishedAt: 1050,
    attempt: 1,
    outcome: 'applied',
    outOfOrder: false,
    errorCode: undefined,
    errorMessage: undefined,
    emitted: [],
    ...over,
  };
}

async function value(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  const data = await metric!.get();
  const hit = data.values.find((v) =>
    Object.entries(labels).every(([k, l]) => String((v.labels as Record<string, unknown>)[k]) === l),
  );
  return hit?.value;
}

test('step durations run from each step to the next one that ran; end_to_end starts at occurredAt', () => {
  expect(stepDurations(handled())).toEqual({
    read: 0.01,
    decide: 0.002,
    write: 0.028,
    emit: 0.01,
    total: 0.05,
    end_to_end: 0.55,
  });
  // No plan: write and emit never started, so decide lasts until the finish and they are absent.
  const d = stepDurations(handled({ writeStartedAt: undefined, emitStartedAt: undefined, occurredAt: 2000 }));
  expect(d).toEqual({ read: 0.01, decide: 0.04, total: 0.05, end_to_end: 0 });
});

test('counters, histogram and gauge follow the instrumentation events', async () => {
  const registry = new Registry();
  const inst = new Instrumentation();
  const metrics = registerStageMetrics(registry, inst);

  inst.emit(EVENTS.EVENT_HANDLED, handled());
  inst.emit(EVENTS.EVENT_HANDLED, handled({ outcome: 'duplicate', outOfOrder: true }));
  inst.emit(EVENTS.EVENT_RETRY, {
    stage: 'book',
    key: 'a1',
    eventId: 'e2',
    attempt: 1,
    code: 'STORE_TRANSIENT',
    delayMs: 200,
  });
  inst.emit(EVENTS.EVENT_DEAD_LETTERED, {
    stage: 'book',
    key: 'a1',
    eventId: 'e2',
    code: 'HANDLER_FAILED',
    attempts: 2,
  });
  inst.emit(
    EVENTS.EVENT_HANDLED,
    handled({
      outcome: 'dead-lettered',
      errorCode: 'HANDLER_FAILED',
      writeStartedAt: undefined,
      emitStartedAt: undefined,
    }),
  );
  inst.emit(EVENTS.LANES_BUSY, { stage: 'book', partition: 2, busy: 5 });
  inst.emit(EVENTS.LANES_BUSY, { stage: 'book', partition: 2, busy: 3 });
  inst.emit(EVENTS.SETTINGS_REJECTED, { key: 't1', reason: 'x' });

  expect(await value(registry, 'keyflow_events_total', { stage: 'book', outcome: 'applied' })).toBe(1);
  expect(await value(registry, 'keyflow_events_total', { stage: 'book', outcome: 'duplicate' })).toBe(1);
  expect(await value(registry, 'keyflow_events_total', { stage: 'book', outcome: 'dead-lettered' })).toBe(1);
  expect(await value(registry, 'keyflow_errors_total', { stage: 'book', code: 'STORE_TRANSIENT' })).toBe(1);
  expect(await value(registry, 'keyflow_errors_total', { stage: 'book', code: 'HANDLER_FAILED' })).toBe(1);
  expect(await value(registry, 'keyflow_retries_total', { stage: 'book' })).toBe(1);
  expect(await value(registry, 'keyflow_dead_letters_total', { stage: 'book' })).toBe(1);
  expect(await value(registry, 'keyflow_out_of_order_total', { stage: 'book', tenant: 't1' })).toBe(1);
  expect(await value(registry, 'keyflow_lanes_busy', { stage: 'book', partition: '2' })).toBe(3);
  expect(await value(registry, 'keyflow_settings_updates_total', { result: 'rejected' })).toBe(1);

  const text = await registry.metrics();
  expect(text).toContain('keyflow_stage_latency_seconds_count{stage="book",step="write"} 2');
  expect(text).toContain('keyflow_stage_latency_seconds_count{stage="book",step="decide"} 3');
  expect(text).toContain('keyflow_stage_latency_seconds_count{stage="book",step="end_to_end"} 3');

  metrics.stop();
  metrics.stop();
  inst.emit(EVENTS.EVENT_HANDLED, handled());
  expect(await value(registry, 'keyflow_events_total', { stage: 'book', outcome: 'applied' })).toBe(1);
});

test('an out-of-order event the stage applied counts as corrected; a duplicate one does not', async () => {
  const registry = new Registry();
  const inst = new Instrumentation();
  registerStageMetrics(registry, inst);
  inst.emit(EVENTS.EVENT_HANDLED, handled({ outOfOrder: true, outcome: 'applied' }));
  inst.emit(EVENTS.EVENT_HANDLED, handled({ outOfOrder: true, outcome: 'duplicate', offset: '11' }));
  inst.emit(EVENTS.EVENT_HANDLED, handled({ outOfOrder: false, outcome: 'applied', offset: '12' }));
  expect(await value(registry, 'keyflow_out_of_order_total', { stage: 'book', tenant: 't1' })).toBe(2);
  expect(await value(registry, 'keyflow_out_of_order_corrected_total', { stage: 'book', tenant: 't1' })).toBe(
    1,
  );
});
