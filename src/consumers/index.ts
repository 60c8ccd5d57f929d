export { StageRunner, type RunnerDeps } from './runner';
export { RUNNER_DEFAULTS, type RunnerOptions } from './options';
export { backoffMs, decideRetry, type RetryPolicy } from './retry';
export { groupByKey, OffsetTracker, runLanes } from './lanes';
export * from './dead-letters';
export type { EntityLeases, RuntimeSwitches, ValueDecoder } from './types';
