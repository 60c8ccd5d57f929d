// Turns a benchmark run into what a reviewer reads: a markdown document with one table per scenario
// (every contestant on the same event set, side by side), the ratios and targets, and an SVG chart of
// latency against offered load. Plain strings only, no dependencies, so the files open anywhere.
import {
  BASELINE_ORDER,
  type BenchRun,
  type ContestantName,
  type ContestantResult,
  type CurvePoint,
  type ScenarioResult,
} from './types';

// ---------------------------------------------------------------------------------------------
// Number formatting

/** Thousands separators in the integer part of a plain decimal string: "-1234.5" → "-1,234.5". */
const group = (s: string): string => s.replace(/^(-?\d+)/, (w) => w.replace(/\B(?=(\d{3})+$)/g, ','));

/** 12345.6 → "12,346" (own grouping rather than locale formatting, so output is the same everywhere). */
export function formatInt(n: number): string {
  return group(Math.round(n).toString());
}

/** 12345.67 → "12,345.7". */
export function formatMs(n: number): string {
  return group(n.toFixed(1));
}

/** Axis tick labels: grouped integers, or up to three significant decimals for small values. */
function formatTick(n: number): string {
  if (Math.abs(n) >= 1 && Number.isInteger(Math.round(n * 1000) / 1000)) return formatInt(n);
  return String(Number(n.toPrecision(3)));
}

// ---------------------------------------------------------------------------------------------
// SVG chart

export interface ChartSeries {
  name: string;
  points: CurvePoint[];
}

export interface ChartOptions {
  title?: string;
  width?: number;
  height?: number;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const colourOf = (i: number): string => PALETTE[i] ?? `hsl(${Math.round((i * 137.5) % 360)}, 65%, 40%)`;

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Coordinates to one decimal, so the file stays small. */
const c = (n: number): string => (Math.round(n * 10) / 10).toString();

/** A "nice" step (1, 2, 2.5 or 5 × 10^k) splitting span into about `count` intervals. */
function niceStep(span: number, count: number): number {
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

interface Scale {
  at(v: number): number;
  ticks: number[];
  log: boolean;
}

/** 0 to a nice maximum, about five ticks. */
function linearScale(max: number, from: number, to: number): Scale {
  const step = max > 0 ? niceStep(max, 5) : 1;
  const top = max > 0 ? Math.ceil(max / step - 1e-9) * step : 1;
  const ticks: number[] = [];
  for (let i = 0; i * step <= top + step * 1e-9; i++) ticks.push(i * step);
  return { at: (v) => from + (v / top) * (to - from), ticks, log: false };
}

/** Whole decades around [min, max]; values at or below zero sit on the bottom of the axis. */
function logScale(min: number, max: number, from: number, to: number): Scale {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)));
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(Number((10 ** e).toPrecision(1)));
  return {
    at: (v) => from + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * (to - from),
    ticks,
    log: true,
  };
}

const usable = (p: CurvePoint): boolean =>
  Number.isFinite(p.offeredRate) && Number.isFinite(p.p50) && Number.isFinite(p.p99);

/**
 * p99 (solid, with dots) and p50 (dashed) latency against offered load, one colour per series. The
 * y axis turns logarithmic when latencies span more than a factor of 50, so a saturated contestant
 * does not flatten the others into the floor.
 */
export function latencyChartSvg(series: ChartSeries[], opts: ChartOptions = {}): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 420;
  const m = { left: 64, right: 170, top: opts.title ? 40 : 20, bottom: 52 };
  const plot = { x0: m.left, x1: width - m.right, y0: height - m.bottom, y1: m.top };

  const drawn = series.map((s) => ({
    name: s.name,
    points: s.points.filter(usable).sort((a, b) => a.offeredRate - b.offeredRate),
  }));
  const all = drawn.flatMap((s) => s.points);
  const latencies = all.flatMap((p) => [p.p50, p.p99]);
  const maxLatency = Math.max(0, ...latencies);
  const minPositive = Math.min(...latencies.filter((v) => v > 0));
  const x = linearScale(Math.max(0, ...all.map((p) => p.offeredRate)), plot.x0, plot.x1);
  const y =
    Number.isFinite(minPositive) && maxLatency / minPositive > 50
      ? logScale(minPositive, maxLatency, plot.y0, plot.y1)
      : linearScale(maxLatency, plot.y0, plot.y1);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
  if (opts.title) {
    out.push(
      `<text x="${c(width / 2)}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(opts.title)}</text>`,
    );
  }

  // Grid, ticks and axes.
  for (const t of x.ticks) {
    const px = c(x.at(t));
    out.push(`<line x1="${px}" y1="${c(plot.y0)}" x2="${px}" y2="${c(plot.y1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${px}" y="${c(plot.y0 + 16)}" text-anchor="middle">${formatTick(t)}</text>`);
  }
  for (const t of y.ticks) {
    const py = c(y.at(t));
    out.push(`<line x1="${c(plot.x0)}" y1="${py}" x2="${c(plot.x1)}" y2="${py}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${c(plot.x0 - 6)}" y="${c(y.at(t) + 4)}" text-anchor="end">${formatTick(t)}</text>`);
  }
  out.push(
    `<path d="M${c(plot.x0)} ${c(plot.y1)}V${c(plot.y0)}H${c(plot.x1)}" fill="none" stroke="#333333"/>`,
    `<text x="${c((plot.x0 + plot.x1) / 2)}" y="${c(height - 12)}" text-anchor="middle">offered load (events/s)</text>`,
    `<text transform="translate(16 ${c((plot.y0 + plot.y1) / 2)}) rotate(-90)" text-anchor="middle">latency (ms${y.log ? ', log scale' : ''})</text>`,
  );

  // One solid p99 path with dots and one dashed p50 path per series that has points.
  drawn.forEach((s, i) => {
    if (s.points.length === 0) return;
    const colour = colourOf(i);
    const line = (pick: (p: CurvePoint) => number): string =>
      s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${c(x.at(p.offeredRate))} ${c(y.at(pick(p)))}`).join('');
    out.push(
      `<path class="p99" d="${line((p) => p.p99)}" fill="none" stroke="${colour}" stroke-width="2"/>`,
      `<path class="p50" d="${line((p) => p.p50)}" fill="none" stroke="${colour}" stroke-width="1.5" stroke-dasharray="5 4"/>`,
      ...s.points.map(
        (p) => `<circle cx="${c(x.at(p.offeredRate))}" cy="${c(y.at(p.p99))}" r="3" fill="${colour}"/>`,
      ),
    );
  });

  // Legend: a swatch per series, then what solid and dashed mean.
  const lx = plot.x1 + 16;
  let ly = plot.y1 + 8;
  drawn.forEach((s, i) => {
    const label = s.points.length === 0 ? `${s.name} (no data)` : s.name;
    out.push(
      `<line x1="${c(lx)}" y1="${c(ly)}" x2="${c(lx + 22)}" y2="${c(ly)}" stroke="${colourOf(i)}" stroke-width="2"/>`,
      `<text x="${c(lx + 28)}" y="${c(ly + 4)}">${escapeXml(label)}</text>`,
    );
    ly += 18;
  });
  ly += 8;
  out.push(
    `<line x1="${c(lx)}" y1="${c(ly)}" x2="${c(lx + 22)}" y2="${c(ly)}" stroke="#333333" stroke-width="2"/>`,
    `<text x="${c(lx + 28)}" y="${c(ly + 4)}">p99</text>`,
    `<line x1="${c(lx)}" y1="${c(ly + 18)}" x2="${c(lx + 22)}" y2="${c(ly + 18)}" stroke="#333333" stroke-width="1.5" stroke-dasharray="5 4"/>`,
    `<text x="${c(lx + 28)}" y="${c(ly + 22)}">p50</text>`,
    '</svg>',
  );
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Markdown document

const CONTESTANT_ORDER: ContestantName[] = ['pipeline', ...BASELINE_ORDER];
const DASH = '—';

const ms = (v: number | null): string => (v === null ? DASH : formatMs(v));
const yesNo = (v: boolean | null): string => (v === null ? DASH : v ? 'yes' : 'no');
const twoDecimals = (v: number | null): string => (v === null ? DASH : v.toFixed(2));
/** Table cells may not hold a pipe or a line break. */
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

function table(head: string[], rows: string[][]): string[] {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => ' --- ').join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
}

/** "2026-03-01T09:30:12.345Z" → "2026-03-01 09:30 UTC"; anything unparseable is shown as given. */
function runDate(startedAt: string): string {
  const d = new Date(startedAt);
  if (Number.isNaN(d.getTime())) return startedAt;
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 16)} UTC`;
}

function contestantRows(s: ScenarioResult): string[][] {
  const results: [ContestantName, ContestantResult | undefined][] = CONTESTANT_ORDER.map((name) => [
    name,
    name === 'pipeline' ? s.pipeline : s.baselines[name],
  ]);
  return results
    .filter((e): e is [ContestantName, ContestantResult] => e[1] !== undefined)
    .map(([name, r]) => [
      name,
      formatInt(r.throughput),
      ms(r.p50),
      ms(r.p95),
      ms(r.p99),
      ms(r.max),
      typeof r.peakRssMb === 'number' ? formatInt(r.peakRssMb) : DASH,
      yesNo(r.correct),
      formatInt(r.errors),
      formatInt(r.retries),
      formatInt(r.deadLetters),
      formatInt(r.outOfOrder),
      r.notes.join('; '),
    ]);
}

function scenarioSection(s: ScenarioResult, chartFile: string | undefined): string[] {
  const e = s.eventSet;
  const lines = [
    `## ${s.scenario}`,
    '',
    s.description,
    '',
    `Event set: ${formatInt(e.events)} events over ${formatInt(e.entities)} entities; ` +
      `${formatInt(e.late)} late, ${formatInt(e.duplicates)} duplicates, ${formatInt(e.poison)} poison, ` +
      `${formatInt(e.injectedFailures)} injected failures (${e.source}). Scenario took ${formatSeconds(s.durationMs)}.`,
    '',
    ...table(
      [
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
      ],
      contestantRows(s),
    ),
    '',
    "Peak RSS: the bench process at its highest during the contestant's runs, every contestant running in " +
      'it (the pipeline is the processor itself, in-process), so it includes the harness and the event set.',
    '',
  ];

  const timedOut = s.measurements.filter((m) => m.timedOut);
  if (timedOut.length > 0) {
    const which = timedOut.map((m) =>
      m.mode === 'open'
        ? `${m.contestant} at ${formatInt(m.offeredRate ?? 0)} ev/s`
        : `${m.contestant} (max load)`,
    );
    lines.push(`**Timed out before every event completed:** ${which.join(', ')}.`, '');
  }

  const ratios = Object.entries(s.ratios);
  lines.push('### Ratios', '');
  if (ratios.length === 0) lines.push('None measured.', '');
  else
    lines.push(
      ...table(
        ['ratio', 'value'],
        ratios.map(([k, v]) => [k, twoDecimals(v)]),
      ),
      '',
    );

  if (s.figures && Object.keys(s.figures).length) {
    lines.push('### Figures', '');
    lines.push(
      ...table(
        ['figure', 'value'],
        Object.entries(s.figures).map(([k, v]) => [k, String(v)]),
      ),
      '',
    );
  }
  lines.push('### Targets', '');
  if (s.targets.length === 0) lines.push('None set.', '');
  else {
    lines.push(
      ...table(
        ['target', 'wanted', 'measured', 'met'],
        s.targets.map((t) => [t.name, t.wanted, twoDecimals(t.ratio), yesNo(t.met)]),
      ),
      '',
    );
  }

  if (chartFile) lines.push(`![latency vs load](${chartFile})`, '');

  if (s.profile) {
    lines.push("### Where the pipeline's time goes", '');
    const phases = Object.entries(s.profile);
    if (phases.length === 0) lines.push('No timings recorded.');
    for (const [phase, mean] of phases) lines.push(`- ${phase}: ${formatMs(mean)} ms`);
    lines.push('');
  }
  return lines;
}

function formatSeconds(durationMs: number): string {
  return `${(durationMs / 1000).toFixed(1)} s`;
}

/** The review document for a run; chartFiles maps a scenario name to its SVG's path relative to it. */
export function markdownReport(run: BenchRun, chartFiles: Record<string, string>): string {
  const m = run.machine;
  const lines = [
    `# Keyflow benchmark: ${run.suite} (${runDate(run.startedAt)})`,
    '',
    `Machine: ${m.cpus} CPUs, Node ${m.node}, ${m.platform}, MongoDB ${m.mongoServer}. ` +
      `Run took ${formatSeconds(run.durationMs)}; headline scenario: ${run.scenario}.`,
    '',
  ];
  for (const s of run.scenarios) lines.push(...scenarioSection(s, chartFiles[s.scenario]));
  return lines.join('\n').replace(/\n+$/, '') + '\n';
}
