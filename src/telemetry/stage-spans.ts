// OpenTelemetry spans for every event a stage handles, made from `stage.event.handled` after the fact
// with the times the runner measured, following the messaging semantic conventions: a CONSUMER
// `process <topic>` span whose parent is the input record's traceparent, its `read`, `decide` and
// `write` steps, and a PRODUCER `send` span per emitted record carrying the id its traceparent names.
import { context, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { ATTR_ERROR_TYPE } from '@opentelemetry/semantic-conventions';
import { EVENTS, type HandledEvent, type Instrumentation } from '../instrumentation';
import { parseTraceparent, recordSpanId, type TraceContext } from '../producers/headers';
import type { ChosenIds } from './ids';

// Messaging attributes are still "development" in the semantic conventions; the package asks users to
// copy such names rather than import its unstable entry point.
const ATTR = {
  SYSTEM: 'messaging.system',
  OPERATION_TYPE: 'messaging.operation.type',
  OPERATION_NAME: 'messaging.operation.name',
  DESTINATION: 'messaging.destination.name',
  PARTITION: 'messaging.destination.partition.id',
  GROUP: 'messaging.consumer.group.name',
  MESSAGE_ID: 'messaging.message.id',
  KAFKA_KEY: 'messaging.kafka.message.key',
  KAFKA_OFFSET: 'messaging.kafka.offset',
} as const;

/** Where the event's process span hangs: the record's own traceparent, else a fresh root in its trace. */
function parentOf(e: HandledEvent): { parent?: TraceContext; traceId?: string } {
  if ('traceparent' in e) {
    const parent = parseTraceparent(e.traceparent);
    return parent ? { parent } : { traceId: e.traceId };
  }
  // The runner did not say: Keyflow's own records carry exactly this (see recordSpanId).
  return e.traceId ? { parent: { traceId: e.traceId, spanId: recordSpanId(e.eventId) } } : {};
}

export class StageSpans {
  constructor(
    private readonly tracer: Tracer,
    private readonly ids: ChosenIds,
  ) {}

  /** Subscribes; returns the unsubscribe. */
  follow(instrumentation: Instrumentation): () => void {
    return instrumentation.on(EVENTS.EVENT_HANDLED, (e) => this.handled(e));
  }

  handled(e: HandledEvent): void {
    const { parent, traceId } = parentOf(e);
    const parentContext = parent
      ? trace.setSpanContext(context.active(), { ...parent, traceFlags: 1, isRemote: true })
      : context.active();
    this.ids.choose({ traceId });
    const process = this.tracer.startSpan(
      `process ${e.topic}`,
      {
        kind: SpanKind.CONSUMER,
        startTime: e.consumedAt,
        attributes: {
          [ATTR.SYSTEM]: 'kafka',
          [ATTR.OPERATION_TYPE]: 'process',
          [ATTR.OPERATION_NAME]: 'process',
          [ATTR.DESTINATION]: e.topic,
          [ATTR.PARTITION]: String(e.partition),
          [ATTR.GROUP]: e.stage,
          [ATTR.MESSAGE_ID]: e.eventId,
          [ATTR.KAFKA_KEY]: e.key,
          [ATTR.KAFKA_OFFSET]: Number(e.offset),
          'keyflow.stage': e.stage,
          'keyflow.outcome': e.outcome,
          'keyflow.attempt': e.attempt,
          ...(e.tenantId ? { 'keyflow.tenant_id': e.tenantId } : {}),
          ...(e.outOfOrder ? { 'keyflow.out_of_order': true } : {}),
        },
      },
      parentContext,
    );
    if (e.errorCode) {
      process.setAttribute(ATTR_ERROR_TYPE, e.errorCode);
      if (e.outcome === 'dead-lettered') {
        process.setStatus({ code: SpanStatusCode.ERROR, message: e.errorMessage ?? e.errorCode });
      }
    }
    const inside = trace.setSpan(context.active(), process);
    const steps: [string, number | undefined, number | undefined][] = [
      ['read', e.readStartedAt, e.decideStartedAt],
      ['decide', e.decideStartedAt, e.writeStartedAt],
      ['write', e.writeStartedAt, e.emitStartedAt ?? e.finishedAt],
    ];
    for (const [step, start, end] of steps) {
      if (start === undefined) continue;
      this.child(`${step} ${e.stage}`, SpanKind.INTERNAL, start, end ?? e.finishedAt, inside, {
        'keyflow.stage': e.stage,
        'keyflow.step': step,
      });
    }
    for (const id of e.emitted) {
      this.ids.choose({ spanId: recordSpanId(id) });
      this.child('send', SpanKind.PRODUCER, e.emitStartedAt ?? e.finishedAt, e.finishedAt, inside, {
        [ATTR.SYSTEM]: 'kafka',
        [ATTR.OPERATION_TYPE]: 'send',
        [ATTR.OPERATION_NAME]: 'send',
        [ATTR.MESSAGE_ID]: id,
        'keyflow.stage': e.stage,
      });
    }
    process.end(e.finishedAt);
  }

  private child(
    name: string,
    kind: SpanKind,
    start: number,
    end: number,
    parent: ReturnType<typeof context.active>,
    attributes: Record<string, string | number>,
  ): Span {
    const span = this.tracer.startSpan(name, { kind, startTime: start, attributes }, parent);
    span.end(Math.max(start, end));
    return span;
  }
}
