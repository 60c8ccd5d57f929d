export { StageRunner, type RunnerDeps } from './stage-runner';
export { RUNNER_DEFAULTS, type RunnerOptions } from './options';
export { backoffMs, decideRetry, type RetryPolicy } from './retry';
export { groupByKey, OffsetTracker, runLanes } from './lanes';
export * from '../state/dead-letters';
export type { EntityLeases, RuntimeSwitches, ValueDecoder } from './types';
