// One batch through a batch stage: read every entity at once, fold each state key's events through the
// pure decide() in offset order, write all plans at once. Failures come back per event.
import type { ActionContext, BatchActionHandler, Planned, StageEvent } from '../topology/types';
import { failed, HELD, holdAfterFailures, type EventOutcome, type StepTimings } from './outcome';
import { KeyflowError } from '../errors';

export async function runBatch<E, S, P>(
  handler: BatchActionHandler<E, S, P>,
  events: readonly StageEvent<E>[],
  ctx: ActionContext,
  /**
   * Asked once more just before anything is written: false (the partition may have moved to another
   * member meanwhile) holds every event unwritten, so the next owner applies them and this member
   * does not write on state it read before the move.
   */
  mayWrite: () => boolean = () => true,
): Promise<EventOutcome[]> {
  const t: StepTimings = { readStartedAt: ctx.now() };
  let states: ReadonlyMap<string, S>;
  try {
    states = await handler.read(events, ctx);
  } catch (err) {
    return events.map(() => failed(err, t));
  }

  t.decideStartedAt = ctx.now();
  const stateKey = handler.stateKey?.bind(handler) ?? ((e: StageEvent<E>) => e.key);
  const folded = new Map(states);
  const planned: Planned<E, P>[] = [];
  const planOf = new Map<number, number>(); // plan index → event index
  const out = events.map((e, i): EventOutcome => {
    const k = stateKey(e);
    if (!folded.has(k)) {
      return failed(new KeyflowError('HANDLER_FAILED', `read() returned no state for ${k}`), t);
    }
    try {
      const step = handler.decide(e, folded.get(k)!);
      folded.set(k, step.state);
      if (step.plan !== null) {
        planOf.set(planned.length, i);
        planned.push({ index: planned.length, event: e, plan: step.plan });
      }
      const outcome = step.outcome ?? (step.plan === null ? 'skipped' : 'applied');
      return { kind: 'done', outcome, emit: step.emit, outOfOrder: step.outOfOrder === true, t };
    } catch (err) {
      return failed(err, t);
    }
  });
  // A key's events after a failed decide were decided on a state that never happened: hold them
  // before anything is written.
  const decided = holdAfterFailures(
    events.map((e) => e.key),
    out,
  );
  const writable = planned.filter((p) => decided[planOf.get(p.index)!]!.kind === 'done');
  if (writable.length > 0 && !mayWrite()) return events.map(() => HELD);

  t.writeStartedAt = ctx.now();
  try {
    const report = await handler.write(writable, ctx);
    for (const f of report.failed) decided[planOf.get(f.index)!] = failed(f.error, t);
  } catch (err) {
    for (const p of writable) decided[planOf.get(p.index)!] = failed(err, t);
  }
  return holdAfterFailures(
    events.map((e) => e.key),
    decided,
  );
}
