// The benchmark's arithmetic on known numbers: nearest-rank percentiles, the latency summary, the
// ratios targets are judged on, and open-loop pacing that sends exactly the asked-for load.
import { LatencyRecorder, percentile, rateTicks, ratio } from '../../src/bench/stats';

const oneToHundred = Array.from({ length: 100 }, (_, i) => i + 1);

test('percentile is nearest-rank over an ascending array', () => {
  expect(percentile(oneToHundred, 50)).toBe(50);
  expect(percentile(oneToHundred, 95)).toBe(95);
  expect(percentile(oneToHundred, 99)).toBe(99);
  expect(percentile(oneToHundred, 100)).toBe(100);
  expect(percentile(oneToHundred, 0)).toBe(1);
  expect(percentile([1, 2, 3, 4], 50)).toBe(2); // rank ceil(0.5 * 4) = 2, no interpolation
  expect(percentile([1, 2, 3, 4], 51)).toBe(3);
  expect(percentile([7], 99)).toBe(7);
  expect(percentile([10, 20, 30], 34)).toBe(20);
});

test('percentile refuses an empty array and p outside 0..100', () => {
  expect(() => percentile([], 50)).toThrow(/empty/);
  expect(() => percentile([1], -1)).toThrow(/0\.\.100/);
  expect(() => percentile([1], 101)).toThrow(/0\.\.100/);
  expect(() => percentile([1], NaN)).toThrow(/0\.\.100/);
});

test('LatencyRecorder summarises to 0.1 ms and has nothing before the first sample', () => {
  const r = new LatencyRecorder();
  expect(r.summary()).toBeNull();
  expect(r.count).toBe(0);
  // Added out of order, with fractions that need rounding.
  for (const v of [...oneToHundred].reverse()) r.add(v + 0.04);
  r.add(1000.06);
  expect(r.count).toBe(101);
  expect(r.summary()).toEqual({ count: 101, p50: 51, p95: 96, p99: 100, max: 1000.1 });
});

test('LatencyRecorder grows past its first buffer without losing samples', () => {
  const r = new LatencyRecorder();
  for (let i = 100_000; i >= 1; i--) r.add(i);
  expect(r.count).toBe(100_000);
  expect(r.summary()).toEqual({ count: 100_000, p50: 50_000, p95: 95_000, p99: 99_000, max: 100_000 });
  r.add(0.25);
  expect(r.summary()!.count).toBe(100_001);
});

test('LatencyRecorder rejects samples that are not numbers', () => {
  const r = new LatencyRecorder();
  expect(() => r.add(NaN)).toThrow(/finite/);
  expect(() => r.add(Infinity)).toThrow(/finite/);
  expect(r.count).toBe(0);
});

test('ratio rounds to two decimals and is null when a term is missing or the divisor is zero', () => {
  expect(ratio(2, 3)).toBe(0.67);
  expect(ratio(1000, 400)).toBe(2.5);
  expect(ratio(0, 5)).toBe(0);
  expect(ratio(null, 5)).toBeNull();
  expect(ratio(5, undefined)).toBeNull();
  expect(ratio(NaN, 5)).toBeNull();
  expect(ratio(5, NaN)).toBeNull();
  expect(ratio(5, 0)).toBeNull();
});

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const cumulative = (xs: number[]) => xs.map((_, i) => sum(xs.slice(0, i + 1)));

test('rateTicks sends the whole load, spread evenly over the ticks', () => {
  const ticks = rateTicks(1000, 10_000, 100);
  expect(ticks).toHaveLength(100);
  expect(ticks.every((n) => n === 100)).toBe(true);
  expect(sum(ticks)).toBe(10_000);
});

test('rateTicks keeps fractional rates on their cumulative schedule without drift', () => {
  const ticks = rateTicks(15, 1000, 100); // 1.5 events per tick
  expect(ticks).toHaveLength(10);
  expect(sum(ticks)).toBe(15);
  cumulative(ticks).forEach((c, i) => expect(c).toBe(Math.round((15 * (i + 1) * 100) / 1000)));
  expect(new Set(ticks)).toEqual(new Set([1, 2])); // never bunched up

  const slow = rateTicks(3, 2000, 250); // one event every ~333 ms
  expect(sum(slow)).toBe(6);
  expect(Math.max(...slow)).toBe(1);
});

test('rateTicks caps the last, partial tick at the total', () => {
  const ticks = rateTicks(100, 1050, 100); // 11 ticks, the last covering only 50 ms
  expect(ticks).toHaveLength(11);
  expect(sum(ticks)).toBe(105);
  expect(ticks[10]).toBe(5);
  expect(rateTicks(0, 1000, 100)).toEqual(new Array(10).fill(0));
  expect(rateTicks(500, 0, 100)).toEqual([]);
});

test('rateTicks refuses a tick that is not positive', () => {
  expect(() => rateTicks(10, 1000, 0)).toThrow(/tickMs/);
  expect(() => rateTicks(-1, 1000, 100)).toThrow(/rate/);
});
