// The executor of a stage, chosen once from its kind: a batch stage folds a round's events in one unit
// of work (batch.ts), any other stage runs them one at a time in key lanes (per-event.ts). A round runs
// under entity leases when locking is on (lease-manager.ts); keys whose lease is refused fail alone.
import { EVENTS, type Instrumentation } from '../instrumentation';
import type { ActionContext, StageEvent, StageSpec } from '../topology/types';
import { runBatch } from './batch';
import type { LeaseManager } from './lease-manager';
import { failed, type EventOutcome } from './outcome';
import { runEachEvent } from './per-event';

export type Executor = (
  events: StageEvent[],
  ctx: ActionContext,
  keepGoing: () => boolean,
) => Promise<EventOutcome[]>;

export interface ExecutorOptions {
  /** Per partition, how many distinct keys run at once (per-event stages). */
  keyLanes: number;
  instrumentation: Instrumentation;
}

export function executorFor(spec: StageSpec, opts: ExecutorOptions): Executor {
  const lanes = (list: StageEvent[], busy: number) =>
    opts.instrumentation.emit(EVENTS.LANES_BUSY, { stage: spec.name, partition: list[0]!.partition, busy });
  if (spec.kind === 'batch') {
    // One lane busy while the fold runs, none after, so keyflow_lanes_busy covers batch stages too.
    return async (events, ctx, keepGoing) => {
      if (events.length === 0) return runBatch(spec.handler, events, ctx, keepGoing);
      lanes(events, 1);
      try {
        return await runBatch(spec.handler, events, ctx, keepGoing);
      } finally {
        lanes(events, 0);
      }
    };
  }
  return (events, ctx, keepGoing) =>
    runEachEvent({
      spec,
      events,
      ctx,
      lanes: opts.keyLanes,
      keepGoing,
      onBusy: (busy) => lanes(events, busy),
    });
}

/** Runs one round through `executor`, under `leases` when given (entity locking on). */
export async function runRound(
  events: StageEvent[],
  opts: { executor: Executor; ctx: ActionContext; keepGoing: () => boolean; leases?: LeaseManager },
): Promise<EventOutcome[]> {
  const { executor, ctx, keepGoing, leases } = opts;
  if (!leases || events.length === 0) return executor(events, ctx, keepGoing);
  return leases.hold(
    events.map((e) => e.key),
    async (held) => {
      const ok = events.filter((e) => held.token(e.key) !== undefined);
      const outcomes = await executor(ok, { ...ctx, fence: (key) => held.token(key) }, keepGoing);
      const byEvent = new Map(ok.map((e, i) => [e, outcomes[i]!]));
      return events.map((e) => byEvent.get(e) ?? failed(held.refusal(e.key)));
    },
  );
}
