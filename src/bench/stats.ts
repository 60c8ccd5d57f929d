// The arithmetic of the benchmark, kept apart from Kafka and Mongo so it can be tested on known
// numbers: latency percentiles, the ratios the targets are judged on, and the pacing of an open-loop
// publisher (how many events each tick sends so the offered load is what was asked for).
import type { LatencySummary } from './types';

/**
 * Nearest-rank percentile of an ascending array: the smallest value with at least p% of the samples
 * at or below it. p = 0 gives the minimum, p = 100 the maximum.
 */
export function percentile(sortedAscending: ArrayLike<number>, p: number): number {
  const n = sortedAscending.length;
  if (n === 0) throw new Error('percentile of an empty sample set');
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile must be within 0..100, got ${p}`);
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
  return sortedAscending[rank - 1]!;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

/**
 * Collects latency samples in one growing Float64Array: a run keeps at most ~100k of them, so holding
 * them all (and sorting once at the end) is cheaper and exact compared with a streaming estimate.
 */
export class LatencyRecorder {
  private samples = new Float64Array(1024);
  private n = 0;

  add(ms: number): void {
    if (!Number.isFinite(ms)) throw new Error(`latency sample must be a finite number, got ${ms}`);
    if (this.n === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  /** p50/p95/p99/max over every sample so far, to 0.1 ms; null before the first sample. */
  summary(): LatencySummary | null {
    if (this.n === 0) return null;
    const sorted = this.samples.slice(0, this.n).sort(); // typed-array sort is numeric
    return {
      count: this.n,
      p50: round1(percentile(sorted, 50)),
      p95: round1(percentile(sorted, 95)),
      p99: round1(percentile(sorted, 99)),
      max: round1(sorted[this.n - 1]!),
    };
  }
}

const present = (x: number | null | undefined): x is number => typeof x === 'number' && Number.isFinite(x);

/** a / b to two decimals; null when a term is missing (or not a number) or b is zero. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (!present(a) || !present(b) || b === 0) return null;
  return Math.round((a / b) * 100) / 100;
}

/**
 * Events to send at each tick of an open loop lasting durationMs: after tick i (0-based) the total
 * sent is round(rate * (i + 1) * tickMs / 1000), never more than round(rate * durationMs / 1000).
 * Cumulative targets rather than a fixed per-tick count, so fractional rates do not drift.
 */
export function rateTicks(rate: number, durationMs: number, tickMs: number): number[] {
  if (!(rate >= 0) || !Number.isFinite(rate))
    throw new Error(`rate must be a finite number ≥ 0, got ${rate}`);
  if (!(durationMs >= 0) || !Number.isFinite(durationMs)) {
    throw new Error(`durationMs must be a finite number ≥ 0, got ${durationMs}`);
  }
  if (!(tickMs > 0) || !Number.isFinite(tickMs)) throw new Error(`tickMs must be > 0, got ${tickMs}`);
  const total = Math.round((rate * durationMs) / 1000);
  const ticks = Math.ceil(durationMs / tickMs);
  const out: number[] = [];
  let sent = 0;
  for (let i = 0; i < ticks; i++) {
    const due = Math.min(total, Math.round((rate * (i + 1) * tickMs) / 1000));
    out.push(due - sent);
    sent = due;
  }
  return out;
}
