// After a round: each event's outcome sorted into what settles now (done), what runs again in the
// next round (held behind its key, or retried in place) and what is dead-lettered — as the stage's
// failure strategy says. A key whose event failed keeps its order: its later events of the round
// wait for the next round, or, when the strategy parked the key, get letters of their own.
import { EVENTS, type Instrumentation } from '../instrumentation';
import type { Logger } from '../logger';
import type { DeadLetters, Dying } from './dead-letter';
import type { Runnable } from './envelope';
import type { FailureStrategy } from './failure';
import type { EventOutcome } from './outcome';
import type { Done } from './settlement';

export interface Triage {
  done: Done[];
  dying: Dying[];
  next: Runnable[];
  /** The shortest retry delay asked for; Infinity when nothing is retried. */
  delayMs: number;
}

export interface TriageOptions {
  stage: string;
  strategy: FailureStrategy;
  letters: DeadLetters;
  instrumentation: Instrumentation;
  log: Logger;
}

export function triage(round: Runnable[], outcomes: EventOutcome[], opts: TriageOptions): Triage {
  const out: Triage = { done: [], dying: [], next: [], delayMs: Infinity };
  const fate = new Map<string, 'wait' | 'park'>();
  round.forEach((p, i) => {
    const o = outcomes[i]!;
    const f = fate.get(p.key);
    if (f === 'park') return void out.dying.push(opts.letters.waiting(p));
    if (f === 'wait' || o.kind === 'held') return void out.next.push(p);
    if (o.kind === 'done') return void out.done.push({ p, o });
    const action = opts.strategy.onFailure(o.error, p.event.attempt);
    if (action.action === 'retry') {
      fate.set(p.key, 'wait');
      out.delayMs = Math.min(out.delayMs, action.delayMs);
      out.next.push({ ...p, event: { ...p.event, attempt: p.event.attempt + 1 } });
      const { key, eventId, attempt } = p.event;
      const { code, message } = o.error;
      const delayMs = action.delayMs;
      opts.instrumentation.emit(EVENTS.EVENT_RETRY, {
        stage: opts.stage,
        key,
        eventId,
        attempt,
        code,
        delayMs,
      });
      opts.log.warn({ key, eventId, attempt, code, delayMs, err: message }, 'retrying event');
      return;
    }
    const x = opts.letters.doom(p, o.error, p.event.attempt, o.t);
    fate.set(p.key, x.status === 'parked' ? 'park' : 'wait');
    out.dying.push(x);
  });
  return out;
}
