// The pieces every contestant's run shares: what it is asked to do, and turning its tracker into the
// Measurement the results keep.
import type { BenchEvent } from './events';
import type { Tracker } from './arena';
import type { ContestantName, Measurement } from './types';

export interface RunSpec {
  mode: 'max' | 'open';
  /** Open loop: events/s to offer. */
  rate?: number;
  events: readonly BenchEvent[];
  /** Epoch ms the measurement must end by. */
  until: number;
  /** Check the tables against the ground truth afterwards (only when `events` is the whole set). */
  check: boolean;
  /** Pipeline only: fill the arena's store before the run (the growth scenario). */
  preload?: { conversions: number; leads: number };
  /** Pipeline only: after a checked run, time a replay full pass and a raw read of the inputs. */
  replay?: boolean;
}

export function measurementOf(
  contestant: ContestantName,
  spec: RunSpec,
  tracker: Tracker,
  finished: boolean,
  extra: { correct: boolean | null; notes: string[]; throughput?: number },
): Measurement {
  const elapsedMs =
    tracker.firstAt !== undefined && tracker.lastAt !== undefined ? tracker.lastAt - tracker.firstAt : 0;
  const notes = [...extra.notes];
  if (!finished) notes.unshift(`timed out: ${tracker.completed} of ${tracker.expected} completed`);
  return {
    contestant,
    mode: spec.mode,
    ...(spec.rate !== undefined ? { offeredRate: Math.round(spec.rate) } : {}),
    events: tracker.expected,
    completed: tracker.completed,
    elapsedMs,
    throughput: extra.throughput ?? tracker.throughput(),
    latency: tracker.latency.summary(),
    errors: tracker.errors,
    retries: tracker.retries,
    deadLetters: tracker.deadLetters,
    outOfOrder: tracker.outOfOrder,
    correct: finished ? extra.correct : false,
    notes,
    timedOut: !finished,
  };
}

/** `pipeline max`, `passthrough @450/s`: the progress bar's name for a measurement. */
export function phaseLabel(name: string, spec: Pick<RunSpec, 'mode' | 'rate'>): string {
  return `${name} ${spec.mode === 'max' ? 'max' : `@${Math.round(spec.rate!)}/s`}`;
}
