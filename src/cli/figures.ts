// `keyflow figures`: writes the newest bench and fault results into docs/benchmarks-and-faults.md, between
// its markers, from the results files the bench and fault commands wrote. The figures in the docs are
// therefore never typed by hand; older runs live in the file's git history.
import fs from 'node:fs';
import path from 'node:path';
import { queriesMarkdown, type QueriesResult } from '../bench/queries';
import { replayGrowthMarkdown, type ReplayGrowthRun } from '../bench/replay-growth';
import { markdownReport } from '../bench/report';
import { scalingReport, type ScalingRun } from '../bench/scaling-report';
import type { BenchRun } from '../bench/types';
import { KeyflowError } from '../errors';
import { passed, reportTable, type FaultFigures } from '../faults/figures';
import { defineCommand } from './args';

export const FIGURE_BLOCKS = [
  'bench',
  'queries',
  'replayGrowth',
  'scaling',
  'faults',
  'faultsPlatformatic',
] as const;
export type FigureBlock = (typeof FIGURE_BLOCKS)[number];

const begin = (name: string) => `<!-- figures:${name}:begin -->`;
const end = (name: string) => `<!-- figures:${name}:end -->`;

/** Nest a report's headings under the doc's own section (`#` becomes `###`). */
function nest(markdown: string): string {
  return markdown.replace(/^(#+) /gm, '##$1 ').trim();
}

interface FaultRun {
  startedAt: string;
  durationMs: number;
  machine: { cpus: number; node: string; mongoServer: string };
  /** The processors' delivery guarantee; absent in runs from before the setting. */
  guarantee?: string;
  /** KEYFLOW_KAFKA_CLIENT of the processors; absent in runs from before the setting was recorded. */
  kafkaClient?: string;
  scenarios: FaultFigures[];
  dashboard: { series: number }[];
}

export function benchBlock(run: BenchRun, source: string): string {
  return [
    `_Rendered from \`${source}\`: \`keyflow bench ${run.suite}\`, started ${run.startedAt}._`,
    '',
    nest(markdownReport(run, {})),
  ].join('\n');
}

export function scalingBlock(run: ScalingRun, source: string): string {
  return [
    `_Rendered from \`${source}\`: \`keyflow bench scaling\`, started ${run.startedAt}, ${Math.round(run.durationMs / 1000)} s._`,
    '',
    nest(scalingReport(run)),
  ].join('\n');
}

export function queriesBlock(run: QueriesResult, source: string): string {
  const took = run.durationMs === undefined ? '' : `, ${Math.round(run.durationMs / 1000)} s`;
  const above = run.figures.filter((f) => f.ratio > 2).length;
  return [
    `_Rendered from \`${source}\`: \`keyflow bench queries\`, started ${run.startedAt}${took}._`,
    '',
    `${run.figures.length} declared queries; ${above} cost more than twice as much at ${run.sizes.at(-1)!.toLocaleString('en')} rows as at ${run.sizes[0]!.toLocaleString('en')}.`,
    '',
    nest(queriesMarkdown(run)),
  ].join('\n');
}

/** One section per server that has a run, in a fixed order. */
export function replayGrowthBlock(runs: { run: ReplayGrowthRun; source: string }[]): string {
  return runs
    .map(({ run, source }) =>
      [
        `_Rendered from \`${source}\`: \`npx tsx src/bench/replay-growth.ts\`, started ${run.startedAt}._`,
        '',
        nest(replayGrowthMarkdown(run)),
      ].join('\n'),
    )
    .join('\n\n');
}

export function faultsBlock(run: FaultRun, source: string, client = run.kafkaClient): string {
  const full = run.dashboard.length > 0;
  const ok = run.scenarios.filter(passed).length;
  return [
    `_Rendered from \`${source}\`: ${full ? 'the full suite' : 'the quick (CI-sized) scenarios'}, started ${run.startedAt}, ` +
      `${Math.round(run.durationMs / 1000)} s, ${run.machine.cpus} CPUs, Node ${run.machine.node}, ${run.machine.mongoServer}` +
      `${run.guarantee ? `, processors in ${run.guarantee} mode` : ''}${client ? ` on the ${client} client` : ''}._`,
    '',
    `${ok} of ${run.scenarios.length} scenarios pass.`,
    '',
    ...reportTable(run.scenarios),
    '',
    ...run.scenarios.map((f) => `- ${f.scenario}: ${f.notes.join('; ')}`),
    ...(full
      ? [
          `- dashboard: ${run.dashboard.filter((d) => d.series > 0).length} of ${run.dashboard.length} queries returned series`,
        ]
      : []),
  ].join('\n');
}

/**
 * Replaces each named block between its markers; a block with no new content is left as it was. A doc
 * that lacks a block's markers is refused, so a renamed heading cannot silently drop the figures.
 */
export function renderFigures(doc: string, blocks: Partial<Record<FigureBlock, string>>): string {
  let out = doc;
  for (const name of FIGURE_BLOCKS) {
    const from = out.indexOf(begin(name));
    const to = out.indexOf(end(name));
    if (from < 0 || to < from) {
      throw new KeyflowError('USAGE', `the doc has no ${begin(name)} … ${end(name)} block`);
    }
    const body = blocks[name];
    if (body === undefined) continue;
    out = `${out.slice(0, from + begin(name).length)}\n\n${body.trim()}\n\n${out.slice(to)}`;
  }
  return out;
}

function readJson<T>(file: string): T | undefined {
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as T) : undefined;
}

/** The blocks the results folders can fill: absent files leave their block alone. */
export function figureBlocks(benchDir: string, faultsDir: string): Partial<Record<FigureBlock, string>> {
  const rel = (f: string) => path.relative(process.cwd(), f) || f;
  const bench = path.join(benchDir, 'latest.json');
  const scaling = path.join(benchDir, 'scaling-latest.json');
  const faults = path.join(faultsDir, 'latest.json');
  // `KEYFLOW_KAFKA_CLIENT=platformatic keyflow faults all --results faults/results/platformatic`
  const faultsPlatformatic = path.join(faultsDir, 'platformatic', 'latest.json');
  const fp = readJson<FaultRun>(faultsPlatformatic);
  const b = readJson<BenchRun>(bench);
  const s = readJson<ScalingRun>(scaling);
  const f = readJson<FaultRun>(faults);
  const queries = path.join(benchDir, 'queries-latest.json');
  const q = readJson<QueriesResult>(queries);
  const replays = ['mongo-java-server', 'secantusdb', 'ferretdb']
    .map((server) => path.join(benchDir, `replay-growth-${server}-latest.json`))
    .map((file) => ({ run: readJson<ReplayGrowthRun>(file), source: rel(file) }))
    .filter((r): r is { run: ReplayGrowthRun; source: string } => r.run !== undefined);
  return {
    ...(b ? { bench: benchBlock(b, rel(bench)) } : {}),
    ...(q ? { queries: queriesBlock(q, rel(queries)) } : {}),
    ...(replays.length ? { replayGrowth: replayGrowthBlock(replays) } : {}),
    ...(s ? { scaling: scalingBlock(s, rel(scaling)) } : {}),
    ...(f ? { faults: faultsBlock(f, rel(faults)) } : {}),
    ...(fp ? { faultsPlatformatic: faultsBlock(fp, rel(faultsPlatformatic), 'platformatic') } : {}),
  };
}

/** Prettier's Markdown layout when prettier is installed (a development tool); the text as is otherwise. */
async function formatted(text: string, file: string): Promise<string> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const prettier = require('prettier') as typeof import('prettier');
    const options = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(text, { ...options, filepath: file });
  } catch (err) {
    if ((err as { code?: string }).code === 'MODULE_NOT_FOUND') return text;
    throw err;
  }
}

export const figuresCommand = defineCommand({
  name: 'figures',
  summary: 'write the latest bench and fault results into docs/benchmarks-and-faults.md',
  options: {
    bench: { type: 'string', value: 'dir', doc: 'bench results folder (default bench/results)' },
    faults: { type: 'string', value: 'dir', doc: 'fault results folder (default faults/results)' },
  },
  async run({ values }) {
    const doc = path.join('docs', 'benchmarks-and-faults.md');
    const blocks = figureBlocks(
      values.bench ?? path.join('bench', 'results'),
      values.faults ?? path.join('faults', 'results'),
    );
    const names = Object.keys(blocks);
    if (names.length === 0) {
      process.stderr.write(
        'keyflow: no results to render: run `keyflow bench quick` or `keyflow faults quick` first\n',
      );
      return 1;
    }
    const text = await formatted(renderFigures(fs.readFileSync(doc, 'utf8'), blocks), path.resolve(doc));
    fs.writeFileSync(doc, text);
    process.stdout.write(`wrote ${doc}: ${names.join(', ')}\n`);
    return 0;
  },
});
