// What a membership change of the stage groups costs, measured from outside: the applied-effects count
// sampled every ~100 ms (a pause is the longest stretch with no new effect while work is pending), and
// the time until both groups are Stable again with the expected member count.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Instance, Rig } from './rig';

export interface Sample {
  /** Epoch ms the count was read. */
  at: number;
  applied: number;
}

export interface Gap {
  /** Longest stretch with no new effect, ms. */
  ms: number;
  /** Epoch ms the stretch began (the last progress before it). */
  from: number;
}

/**
 * The longest stretch with no progress in (from, to], counted from `from` at the earliest (a pause a
 * change caused begins no sooner than the change). The stretch still open at `to` counts too, unless
 * `total` had been reached: nothing was pending then.
 */
export function longestGap(samples: readonly Sample[], from: number, to: number, total?: number): Gap {
  let prevAt = from;
  let prevApplied = 0;
  for (const s of samples) if (s.at <= from) prevApplied = Math.max(prevApplied, s.applied);
  let best: Gap = { ms: 0, from: prevAt };
  let done = total !== undefined && prevApplied >= total;
  for (const s of samples) {
    if (s.at <= from || s.at > to || done) continue;
    if (s.applied > prevApplied) {
      if (s.at - prevAt > best.ms) best = { ms: s.at - prevAt, from: prevAt };
      prevAt = s.at;
      prevApplied = s.applied;
      if (total !== undefined && s.applied >= total) done = true;
    }
  }
  if (!done && to - prevAt > best.ms) best = { ms: to - prevAt, from: prevAt };
  return best;
}

export interface Sampler {
  samples: Sample[];
  stop(): Promise<void>;
}

/** Reads the rig's applied-effects count every `everyMs` until stopped. */
export function sampleApplied(rig: Rig, everyMs = 100): Sampler {
  const samples: Sample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const at = Date.now();
      const applied = await rig.applied().catch(() => undefined);
      if (applied !== undefined) samples.push({ at, applied });
      await sleep(Math.max(0, everyMs - (Date.now() - at)));
    }
  })();
  return {
    samples,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** One membership change and what it cost: the longest pause in effects and the time to Stable. */
export interface Change {
  what: string;
  /** Epoch ms the change began (spawn or signal). */
  at: number;
  /** Epoch ms both groups were Stable with the new member count; undefined if never. */
  stableAt?: number;
  pause?: Gap;
}

/** The pause of each change: the longest gap from the change to `settleMs` after the groups were Stable. */
export function pausesOf(
  changes: Change[],
  samples: readonly Sample[],
  total: number,
  settleMs = 3_000,
): Change[] {
  return changes.map((c) => ({
    ...c,
    pause: longestGap(samples, c.at, (c.stableAt ?? c.at) + settleMs, total),
  }));
}

export function describeChange(c: Change): string {
  const stable = c.stableAt === undefined ? 'never Stable' : `Stable after ${c.stableAt - c.at} ms`;
  return `${c.what}: ${stable}, longest pause in effects ${c.pause?.ms ?? '?'} ms`;
}

/**
 * Starts an instance and waits until it is ready; one that exits first (a store that did not answer
 * its start-up ping on a loaded machine, say) is started again, as a supervisor would, and noted.
 */
export async function startReady(spawn: () => Instance, notes: string[], tries = 3): Promise<Instance> {
  for (let n = 1; ; n++) {
    const i = spawn();
    try {
      await i.ready;
      return i;
    } catch (err) {
      notes.push(`a joining instance did not start (${(err as Error).message}); started it again`);
      if (n >= tries) throw err;
    }
  }
}
