// Tracing is off unless the standard OTLP endpoint variable is set: then every handled event becomes
// spans (stage-spans.ts) exported over OTLP/HTTP (protobuf) in batches. The exporter and the batch
// processor read the rest of the standard OTEL_* variables themselves (headers, timeouts, OTEL_BSP_*).
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { EVENTS, type Instrumentation } from '../instrumentation';
import type { Logger } from '../logger';
import { ChosenIds } from './ids';
import { StageSpans } from './stage-spans';

/** The tracer's name in every span's instrumentation scope. */
export const TRACER_NAME = 'keyflow';

/** True when the standard variables ask for traces: an OTLP endpoint, and the SDK not disabled. */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').map((s) => s.trim());
  return Boolean(endpoint) && env.OTEL_SDK_DISABLED !== 'true' && exporters.includes('otlp');
}

/**
 * Subscribes span making to the processor's instrumentation when tracing is wanted (and says whether
 * it did); a no-op otherwise.
 * Spans go out in batches; once every stage that started has stopped, what is pending is flushed, so
 * a drained shutdown loses none.
 */
export function traceStages(instrumentation: Instrumentation, env: NodeJS.ProcessEnv, log: Logger): boolean {
  if (!tracingWanted(env)) return false;
  const ids = new ChosenIds();
  const provider = new BasicTracerProvider({
    resource: defaultResource()
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME || 'keyflow' }))
      .merge(detectResources({ detectors: [envDetector] })),
    idGenerator: ids,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  // Not registered globally: a host application's own tracer provider stays its own.
  new StageSpans(provider.getTracer(TRACER_NAME), ids).follow(instrumentation);
  const running = new Set<string>();
  instrumentation.on(EVENTS.STAGE_START, ({ stage }) => void running.add(stage));
  instrumentation.on(EVENTS.STAGE_STOP, ({ stage }) => {
    running.delete(stage);
    if (running.size > 0) return;
    provider.forceFlush().catch((err: unknown) => log.warn({ err }, 'could not export the last spans'));
  });
  log.info(
    { endpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT },
    'exporting traces over OTLP',
  );
  return true;
}
