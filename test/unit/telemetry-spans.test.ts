// The tracer made from instrumentation events: a handled event's process span hangs under the input
// record's traceparent (or starts the event's own trace), its read/decide/write steps and one send span
// per emitted record sit under it, each send span carrying the id the record's traceparent names; a
// dead-lettered event's span is an error; and nothing is traced unless an OTLP endpoint is set.
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { EVENTS, Instrumentation, type HandledEvent } from '../../src/instrumentation';
import { createLogger } from '../../src/logger';
import { formatTraceparent, recordSpanId } from '../../src/producers/headers';
import { ChosenIds, StageSpans, traceStages, tracingWanted } from '../../src/telemetry';

// Epoch times, as the runner reports them: the SDK reads a small number as time since the process began.
const T0 = 1_790_000_000_000;

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const UPSTREAM = '00f067aa0ba902b7';

function handled(over: Partial<HandledEvent> = {}): HandledEvent {
  return {
    stage: 'appointments',
    topic: 'external.appointments.v1',
    partition: 3,
    offset: '42',
    key: 'appt-1',
    eventId: 'ev-1',
    traceId: TRACE,
    tenantId: 'acme',
    occurredAt: 1_000,
    consumedAt: T0,
    readStartedAt: T0 + 1,
    decideStartedAt: T0 + 5,
    writeStartedAt: T0 + 6,
    emitStartedAt: T0 + 10,
    finishedAt: T0 + 12,
    attempt: 1,
    outcome: 'applied',
    outOfOrder: false,
    errorCode: undefined,
    errorMessage: undefined,
    emitted: ['out-1', 'out-2'],
    ...over,
  };
}

function rig() {
  const exporter = new InMemorySpanExporter();
  const ids = new ChosenIds();
  const provider = new BasicTracerProvider({
    idGenerator: ids,
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const instrumentation = new Instrumentation();
  new StageSpans(provider.getTracer('test'), ids).follow(instrumentation);
  const spans = () => exporter.getFinishedSpans();
  const named = (name: string) => spans().find((s) => s.name === name)!;
  return { instrumentation, spans, named };
}

test('the process span continues the input traceparent; steps and sends sit under it', () => {
  const { instrumentation, spans, named } = rig();
  instrumentation.emit(EVENTS.EVENT_HANDLED, handled({ traceparent: formatTraceparent(TRACE, UPSTREAM) }));

  const process = named('process external.appointments.v1');
  expect(process.kind).toBe(SpanKind.CONSUMER);
  expect(process.spanContext().traceId).toBe(TRACE);
  expect(process.parentSpanContext?.spanId).toBe(UPSTREAM);
  expect(process.attributes).toMatchObject({
    'messaging.system': 'kafka',
    'messaging.operation.type': 'process',
    'messaging.destination.name': 'external.appointments.v1',
    'messaging.destination.partition.id': '3',
    'messaging.consumer.group.name': 'appointments',
    'messaging.kafka.message.key': 'appt-1',
    'messaging.kafka.offset': 42,
    'messaging.message.id': 'ev-1',
  });
  expect(process.startTime).toEqual([T0 / 1000, 0]);
  expect(process.endTime).toEqual([T0 / 1000, 12_000_000]);

  for (const step of ['read', 'decide', 'write']) {
    expect(named(`${step} appointments`).parentSpanContext?.spanId).toBe(process.spanContext().spanId);
  }
  expect(named('decide appointments').startTime).toEqual([T0 / 1000, 5_000_000]);
  const sends = spans().filter((s) => s.name === 'send');
  expect(sends.map((s) => s.spanContext().spanId)).toEqual([recordSpanId('out-1'), recordSpanId('out-2')]);
  for (const s of sends) {
    expect(s.kind).toBe(SpanKind.PRODUCER);
    expect(s.parentSpanContext?.spanId).toBe(process.spanContext().spanId);
    expect(s.spanContext().traceId).toBe(TRACE);
  }
});

test('an input without a traceparent starts the trace the runner gave the event', () => {
  const { instrumentation, named } = rig();
  instrumentation.emit(EVENTS.EVENT_HANDLED, handled({ traceparent: undefined }));
  const process = named('process external.appointments.v1');
  expect(process.parentSpanContext).toBeUndefined();
  expect(process.spanContext().traceId).toBe(TRACE);
});

test("a runner that does not pass the header gets the parent Keyflow's own producer names", () => {
  const { instrumentation, named } = rig();
  instrumentation.emit(EVENTS.EVENT_HANDLED, handled());
  const process = named('process external.appointments.v1');
  expect(process.parentSpanContext?.spanId).toBe(recordSpanId('ev-1'));
  expect(process.spanContext().traceId).toBe(TRACE);
});

test('a dead-lettered event is an error span with its code', () => {
  const { instrumentation, named } = rig();
  instrumentation.emit(
    EVENTS.EVENT_HANDLED,
    handled({
      outcome: 'dead-lettered',
      errorCode: 'VALIDATION_FAILED',
      errorMessage: 'bad kind',
      emitted: [],
      readStartedAt: undefined,
      decideStartedAt: undefined,
      writeStartedAt: undefined,
      emitStartedAt: undefined,
    }),
  );
  const process = named('process external.appointments.v1');
  expect(process.status).toEqual({ code: SpanStatusCode.ERROR, message: 'bad kind' });
  expect(process.attributes['error.type']).toBe('VALIDATION_FAILED');
  expect(process.attributes['keyflow.outcome']).toBe('dead-lettered');
});

test('nothing is traced unless an OTLP endpoint is set', () => {
  expect(tracingWanted({})).toBe(false);
  expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBe(true);
  expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' })).toBe(true);
  expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318', OTEL_SDK_DISABLED: 'true' })).toBe(
    false,
  );
  expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(
    false,
  );
  expect(traceStages(new Instrumentation(), {}, createLogger('silent'))).toBe(false);
});
