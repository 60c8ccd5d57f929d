// The per-event executor, for stages declared with the simple handler shape (read → decide → write
// one event at a time) and for observers: keys run concurrently in lanes, a key's events in order.
import type { ActionContext, ActionStageSpec, ObserverStageSpec, StageEvent } from '../topology/types';
import { groupByKey, runLanes } from './lanes';
import { failed, HELD, type EventOutcome, type StepTimings } from './outcome';

async function runOne(
  spec: ActionStageSpec | ObserverStageSpec,
  event: StageEvent,
  ctx: ActionContext,
): Promise<EventOutcome> {
  const t: StepTimings = {};
  try {
    if (spec.kind === 'observer') {
      t.writeStartedAt = ctx.now();
      const r = await spec.handler.observe(event, ctx);
      return { kind: 'done', outcome: r.outcome, emit: r.emit ?? [], outOfOrder: false, t };
    }
    t.readStartedAt = ctx.now();
    const state = await spec.handler.read(event, ctx);
    t.decideStartedAt = ctx.now();
    const decision = spec.handler.decide(event, state);
    let outcome: 'applied' | 'duplicate' | 'skipped' = 'skipped';
    if (decision.plan !== null) {
      t.writeStartedAt = ctx.now();
      outcome = await spec.handler.write(decision.plan, event, ctx);
    }
    return { kind: 'done', outcome, emit: decision.emit, outOfOrder: decision.outOfOrder === true, t };
  } catch (err) {
    return failed(err, t);
  }
}

/** Runs the events, at most `lanes` keys at once; a key stops at its first failure (the rest held). */
export async function runEachEvent(opts: {
  spec: ActionStageSpec | ObserverStageSpec;
  events: readonly StageEvent[];
  ctx: ActionContext;
  lanes: number;
  keepGoing: () => boolean;
  onBusy?: (busy: number) => void;
}): Promise<EventOutcome[]> {
  const { spec, events, ctx, lanes, keepGoing, onBusy } = opts;
  const index = new Map(events.map((e, i) => [e, i]));
  const out: EventOutcome[] = events.map(() => HELD);
  const byKey = groupByKey(events, (e) => e.key);
  await runLanes(
    byKey.map((lane) => [lane]),
    lanes,
    async (lane) => {
      for (const e of lane) {
        if (!keepGoing()) return;
        const o = await runOne(spec, e, ctx);
        out[index.get(e)!] = o;
        if (o.kind !== 'done') return;
      }
    },
    keepGoing,
    onBusy,
  );
  return out;
}
