// The review document and the latency chart: contestants in a fixed order with their figures
// formatted as promised, missing figures shown as dashes, and an SVG that never carries NaN.
import { latencyChartSvg, markdownReport } from '../../src/bench/report';
import type { BenchRun, ContestantResult, CurvePoint, ScenarioResult } from '../../src/bench/types';

const point = (offeredRate: number, p50: number, p99: number): CurvePoint => ({
  offeredRate,
  achievedRate: offeredRate,
  p50,
  p95: (p50 + p99) / 2,
  p99,
  max: p99 * 1.5,
});

const result = (over: Partial<ContestantResult>): ContestantResult => ({
  throughput: 1000,
  p50: 1,
  p95: 2,
  p99: 3,
  max: 4,
  correct: true,
  errors: 0,
  retries: 0,
  deadLetters: 0,
  outOfOrder: 0,
  peakRssMb: 180,
  notes: [],
  curve: [],
  ...over,
});

function scenario(over: Partial<ScenarioResult> = {}): ScenarioResult {
  return {
    scenario: 'appointments-steady',
    description: 'Appointment lifecycles at steady load.',
    eventSet: {
      events: 120_000,
      entities: 20_000,
      late: 6_000,
      duplicates: 3_000,
      poison: 12,
      injectedFailures: 40,
      source: 'generate(seed 7)',
    },
    pipeline: result({
      throughput: 12_345.6,
      p50: 4.26,
      p95: 18.04,
      p99: 41.35,
      max: 1234.56,
      retries: 40,
      deadLetters: 12,
      outOfOrder: 6_000,
      peakRssMb: 1_231.6,
      notes: ['late events corrected', 'a | pipe'],
      curve: [point(1000, 3, 9), point(4000, 5, 30)],
    }),
    // Inserted out of the reading order on purpose.
    baselines: {
      bullmq: result({ throughput: 2_500, correct: false, notes: ['counts drift'] }),
      // Written before peak RSS was measured: the field is absent.
      incumbent: result({
        throughput: 800.4,
        p50: null,
        p95: null,
        p99: null,
        max: null,
        peakRssMb: undefined,
        correct: null,
      }),
      passthrough: result({ throughput: 45_000 }),
    },
    ratios: { 'pipeline/passthrough': 0.274, 'pipeline/storeCeiling': null },
    targets: [
      { name: 'throughput vs passthrough', wanted: '≥ 0.2', ratio: 0.27, met: true },
      { name: 'p99 at half load', wanted: '≤ 2', ratio: null, met: null },
      { name: 'vs incumbent', wanted: '≥ 10', ratio: 9.5, met: false },
    ],
    profile: { decode: 0.42, reduce: 1.06, write: 12.3 },
    measurements: [],
    durationMs: 95_000,
    ...over,
  };
}

function run(scenarios: ScenarioResult[]): BenchRun {
  const first = scenarios[0]!;
  return {
    scenario: first.scenario,
    suite: 'smoke',
    startedAt: '2026-03-01T09:30:12.345Z',
    durationMs: 180_000,
    machine: { cpus: 2, node: 'v20.19.0', platform: 'linux', mongoServer: '7.0.14' },
    pipeline: first.pipeline,
    baselines: first.baselines,
    ratios: first.ratios,
    scenarios,
  };
}

const tableRows = (md: string) => md.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| ---'));
const rowCells = (line: string) =>
  line
    .slice(2, -2)
    .split(/ (?<!\\)\| /)
    .map((c) => c.trim());

describe('markdownReport', () => {
  const md = markdownReport(run([scenario()]), { 'appointments-steady': 'appointments-steady.svg' });

  test('title, machine and event set lines', () => {
    expect(md.split('\n')[0]).toBe('# Keyflow benchmark: smoke (2026-03-01 09:30 UTC)');
    expect(md).toContain('Machine: 2 CPUs, Node v20.19.0, linux, MongoDB 7.0.14.');
    expect(md).toContain('## appointments-steady\n\nAppointment lifecycles at steady load.');
    expect(md).toContain(
      'Event set: 120,000 events over 20,000 entities; 6,000 late, 3,000 duplicates, 12 poison, 40 injected failures (generate(seed 7)).',
    );
  });

  test('one row per contestant present, pipeline first, in the fixed order', () => {
    const rows = tableRows(md).map(rowCells);
    const header = rows[0]!;
    expect(header).toEqual([
      'contestant',
      'throughput (ev/s)',
      'p50 (ms)',
      'p95 (ms)',
      'p99 (ms)',
      'max (ms)',
      'peak RSS (MB)',
      'correct',
      'errors',
      'retries',
      'dead letters',
      'out of order',
      'notes',
    ]);
    expect(rows.slice(1, 5).map((r) => r[0])).toEqual(['pipeline', 'passthrough', 'incumbent', 'bullmq']);
    expect(rows[5]![0]).toBe('ratio'); // the contestant table ends there: no storeCeiling row
    expect(md).not.toContain('| storeCeiling |');
  });

  test('throughput as grouped integers, latencies to one decimal, dashes for what is missing', () => {
    const rows = tableRows(md).map(rowCells);
    expect(rows[1]).toEqual([
      'pipeline',
      '12,346',
      '4.3',
      '18.0',
      '41.4',
      '1,234.6',
      '1,232',
      'yes',
      '0',
      '40',
      '12',
      '6,000',
      'late events corrected; a \\| pipe',
    ]);
    expect(rows[2]!.slice(0, 8)).toEqual(['passthrough', '45,000', '1.0', '2.0', '3.0', '4.0', '180', 'yes']);
    expect(rows[3]!.slice(0, 8)).toEqual(['incumbent', '800', '—', '—', '—', '—', '—', '—']);
    expect(rows[4]!.slice(0, 8)).toEqual(['bullmq', '2,500', '1.0', '2.0', '3.0', '4.0', '180', 'no']);
    expect(rows[4]![12]).toBe('counts drift');
    expect(md).toContain('Peak RSS: the bench process at its highest');
  });

  test('ratios and targets tables, the chart and the profile', () => {
    expect(md).toContain('| pipeline/passthrough | 0.27 |');
    expect(md).toContain('| pipeline/storeCeiling | — |');
    expect(md).toContain('| throughput vs passthrough | ≥ 0.2 | 0.27 | yes |');
    expect(md).toContain('| p99 at half load | ≤ 2 | — | — |');
    expect(md).toContain('| vs incumbent | ≥ 10 | 9.50 | no |');
    expect(md).toContain('![latency vs load](appointments-steady.svg)');
    expect(md).toContain(
      "### Where the pipeline's time goes\n\n- decode: 0.4 ms\n- reduce: 1.1 ms\n- write: 12.3 ms",
    );
    // Sections in reading order.
    const at = (s: string) => md.indexOf(s);
    expect(at('| contestant')).toBeLessThan(at('### Ratios'));
    expect(at('### Ratios')).toBeLessThan(at('### Targets'));
    expect(at('### Targets')).toBeLessThan(at('![latency vs load]'));
    expect(at('![latency vs load]')).toBeLessThan(at("### Where the pipeline's time goes"));
  });

  test('a scenario without chart file or profile leaves both out; scenarios keep their order', () => {
    const second = scenario({ scenario: 'conversions-burst', profile: null, baselines: {} });
    const both = markdownReport(run([scenario(), second]), { 'appointments-steady': 'a.svg' });
    expect(both.indexOf('## appointments-steady')).toBeLessThan(both.indexOf('## conversions-burst'));
    const tail = both.slice(both.indexOf('## conversions-burst'));
    expect(tail).not.toContain('![latency vs load]');
    expect(tail).not.toContain('Where the pipeline');
    expect(tableRows(tail).map((r) => rowCells(r)[0])).toContain('pipeline');
    expect(tableRows(tail).map((r) => rowCells(r)[0])).not.toContain('bullmq');
  });

  test('timed-out measurements are called out', () => {
    const m = {
      contestant: 'pipeline' as const,
      mode: 'open' as const,
      offeredRate: 4000,
      events: 1,
      completed: 0,
      elapsedMs: 1,
      throughput: 0,
      latency: null,
      errors: 0,
      retries: 0,
      deadLetters: 0,
      outOfOrder: 0,
      correct: null,
      notes: [],
      timedOut: true,
    };
    const out = markdownReport(run([scenario({ measurements: [m] })]), {});
    expect(out).toContain('**Timed out before every event completed:** pipeline at 4,000 ev/s.');
    expect(md).not.toContain('Timed out');
  });
});

describe('latencyChartSvg', () => {
  const count = (s: string, sub: string) => s.split(sub).length - 1;

  test('one p99 path and one dashed p50 path per series, distinct colours, labelled axes', () => {
    const svg = latencyChartSvg(
      [
        { name: 'pipeline', points: [point(4000, 5, 30), point(1000, 3, 9), point(2000, 4, 12)] },
        { name: 'passthrough', points: [point(1000, 1, 2), point(4000, 1.5, 4)] },
        { name: 'incumbent', points: [point(1000, 8, 20)] },
      ],
      { title: 'appointments <steady> & "co"' },
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(count(svg, '<path class="p99"')).toBe(3);
    expect(count(svg, '<path class="p50"')).toBe(3);
    expect(count(svg, 'stroke-dasharray')).toBeGreaterThanOrEqual(3);
    expect(count(svg, '<circle')).toBe(6); // a dot per p99 point
    const colours = [...svg.matchAll(/<path class="p99"[^>]*stroke="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(colours).size).toBe(3);
    expect(svg).toContain('offered load (events/s)');
    expect(svg).toContain('latency (ms)');
    expect(svg).toContain('appointments &#60;steady&#62; &#38; &#34;co&#34;');
    expect(svg).not.toMatch(/<steady>|& "/);
    expect(svg).not.toContain('NaN');
    expect(svg).not.toMatch(/href|<script|@import|url\(/);
    // Points are drawn left to right whatever order they came in.
    const d = /<path class="p99" d="([^"]+)"/.exec(svg)![1]!;
    const xs = [...d.matchAll(/[ML]([\d.]+) /g)].map((m) => Number(m[1]));
    expect(xs).toEqual([...xs].sort((a, b) => a - b));
    expect(xs).toHaveLength(3);
  });

  test('a linear y axis with about five ticks when latencies are close together', () => {
    const svg = latencyChartSvg([{ name: 'a', points: [point(1000, 2, 10), point(5000, 4, 38)] }]);
    expect(svg).not.toContain('log scale');
    const yLabels = [...svg.matchAll(/text-anchor="end">([^<]+)</g)].map((m) => m[1]);
    expect(yLabels).toEqual(['0', '10', '20', '30', '40']);
    const xLabels = [...svg.matchAll(/text-anchor="middle">([\d,.]+)</g)].map((m) => m[1]);
    expect(xLabels).toEqual(['0', '1,000', '2,000', '3,000', '4,000', '5,000']);
  });

  test('a log y axis in decades when latencies span more than a factor of 50', () => {
    const svg = latencyChartSvg([
      { name: 'fast', points: [point(1000, 1.5, 3)] },
      { name: 'saturated', points: [point(1000, 40, 900)] },
    ]);
    expect(svg).toContain('latency (ms, log scale)');
    const yLabels = [...svg.matchAll(/text-anchor="end">([^<]+)</g)].map((m) => m[1]);
    expect(yLabels).toEqual(['1', '10', '100', '1,000']);
    expect(svg).not.toContain('NaN');
  });

  test('series with no points or one point, or no series at all, give a valid chart without NaN', () => {
    const svg = latencyChartSvg([
      { name: 'empty', points: [] },
      { name: 'single', points: [point(0, 0, 0)] },
    ]);
    expect(svg).not.toContain('NaN');
    expect(svg).not.toContain('Infinity');
    expect(count(svg, '<path class="p99"')).toBe(1);
    expect(svg).toContain('empty (no data)');
    const none = latencyChartSvg([]);
    expect(none).not.toContain('NaN');
    expect(none).toContain('</svg>');
    const bad = latencyChartSvg([{ name: 'bad', points: [point(NaN, 1, 2), point(1000, NaN, 2)] }]);
    expect(bad).not.toContain('NaN');
  });
});
