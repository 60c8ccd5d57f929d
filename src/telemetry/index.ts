// The telemetry room: OpenTelemetry traces made from the engine's instrumentation events.
export { traceStages, tracingWanted, TRACER_NAME } from './tracing';
export { StageSpans } from './stage-spans';
export { ChosenIds } from './ids';
