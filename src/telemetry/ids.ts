// Span and trace ids the tracer chooses itself. Spans are made after the fact, from instrumentation
// events, yet a record's traceparent already named its send span (recordSpanId) when it was built: the
// SDK asks its IdGenerator for every new span's ids, so the next ids to hand out are set just before.
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';
import { RandomIdGenerator } from '@opentelemetry/sdk-trace-base';

export class ChosenIds implements IdGenerator {
  private readonly random = new RandomIdGenerator();
  private spanId: string | undefined;
  private traceId: string | undefined;

  /** The ids the next span gets: the SDK reads them synchronously inside startSpan. */
  choose(ids: { spanId?: string; traceId?: string }): void {
    this.spanId = ids.spanId;
    this.traceId = ids.traceId;
  }

  generateSpanId(): string {
    const id = this.spanId ?? this.random.generateSpanId();
    this.spanId = undefined;
    return id;
  }

  /** Asked only for a span without a parent. */
  generateTraceId(): string {
    const id = this.traceId ?? this.random.generateTraceId();
    this.traceId = undefined;
    return id;
  }
}
