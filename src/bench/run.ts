// `keyflow bench <scenario|quick|all>` (`npm run bench -- …`): runs each scenario's contestants one
// after the other on the same event set and services, then writes bench/results/<timestamp>.json,
// latest.json, a Markdown report and a latency-versus-load chart. Every figure that matters is a
// ratio against a baseline measured in this same run: the machines are shared and noisy.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { demoConfig } from '../app/demo/run';
import type { Logger } from '../logger';
import { RUNNER_DEFAULTS } from '../consumers/options';
import { kafkajsInstance } from '../kafka/kafkajs-client';
import { RegistryCodec } from '../schemas/codec';
import { connectStore, type Store } from '../state/mongo';
import type { BenchContext } from './arena';
import { runIncumbent, runPassthrough, runStoreCeiling } from './baselines';
import { runBullmq } from './bullmq';
import { measureClients, otherClient } from './clients';
import { buildEventSet } from './events';
import type { RunSpec } from './measure';
import { runPipeline, type Profile } from './pipeline';
import { Progress, type ProgressOutput } from '../cli/progress';
import { startRedis, ensureRedisServer, type LocalRedis } from './redis';
import { latencyChartSvg, markdownReport } from './report';
import { measurePeakRss } from './rss';
import { selectScenarios, type ScenarioFile } from './scenario';
import { ratio } from './stats';
import {
  BASELINE_ORDER,
  type BenchRun,
  type ContestantName,
  type ContestantResult,
  type CurvePoint,
  type Measurement,
  type ScenarioResult,
  type TargetCheck,
} from './types';

export interface BenchOptions {
  what: string;
  log: Logger;
  out: (line: string) => void;
  terminal: ProgressOutput;
  resultsDir?: string;
}

type Shared = Omit<BenchContext, 'runId' | 'scenario' | 'set' | 'deadline'> & {
  redis: () => Promise<LocalRedis>;
  warmedUp: boolean;
};

/** The pipeline's own contestants: every scenario runs them, at max and open loads. */
const PIPELINES: readonly ContestantName[] = ['pipeline', 'pipelineAtLeastOnce', 'pipelineOtherClient'];

/** The run of median throughput (the lower middle one of an even count). */
export function medianRun<T extends { m: Measurement }>(runs: T[]): T {
  if (runs.length === 0) throw new Error('medianRun of no runs');
  const sorted = [...runs].sort((a, b) => a.m.throughput - b.m.throughput);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function curveOf(ms: Measurement[]): CurvePoint[] {
  return ms
    .filter((m) => m.mode === 'open' && m.latency !== null)
    .map((m) => ({
      offeredRate: m.offeredRate!,
      achievedRate: m.throughput,
      p50: m.latency!.p50,
      p95: m.latency!.p95,
      p99: m.latency!.p99,
      max: m.latency!.max,
    }))
    .sort((a, b) => a.offeredRate - b.offeredRate);
}

/** Of open-loop runs, the one offered the load nearest `rate`. */
function nearestRate<T>(runs: T[], rate: number, rateOf: (r: T) => number): T | undefined {
  return [...runs].sort((a, b) => Math.abs(rateOf(a) - rate) - Math.abs(rateOf(b) - rate))[0];
}

/** The open-loop measurement nearest half the pipeline's maximum: where latencies are compared. */
function atHalf(ms: Measurement[], half: number): Measurement | undefined {
  return nearestRate(
    ms.filter((m) => m.mode === 'open' && m.latency !== null),
    half,
    (m) => m.offeredRate!,
  );
}

export function contestantResult(ms: Measurement[], half: number): ContestantResult {
  const max = ms.find((m) => m.mode === 'max');
  const lat = atHalf(ms, half)?.latency ?? null;
  return {
    throughput: max?.throughput ?? 0,
    p50: lat?.p50 ?? null,
    p95: lat?.p95 ?? null,
    p99: lat?.p99 ?? null,
    max: lat?.max ?? null,
    correct: max?.correct ?? null,
    errors: max?.errors ?? 0,
    retries: max?.retries ?? 0,
    deadLetters: max?.deadLetters ?? 0,
    outOfOrder: max?.outOfOrder ?? 0,
    peakRssMb: ms.some((m) => m.rss) ? Math.max(...ms.map((m) => m.rss?.peakMb ?? 0)) : null,
    // An open run's note that only repeats the max run's (a setting, say) is said once.
    notes: ms.flatMap((m) =>
      m.mode === 'open'
        ? m.notes.filter((n) => !max?.notes.includes(n)).map((n) => `@${m.offeredRate}/s: ${n}`)
        : m.notes,
    ),
    curve: curveOf(ms),
  };
}

export function ratiosAndTargets(
  pipeline: ContestantResult,
  baselines: ScenarioResult['baselines'],
): { ratios: Record<string, number | null>; targets: TargetCheck[] } {
  const t = (n: ContestantName) =>
    (n === 'pipeline' ? pipeline : baselines[n as keyof typeof baselines])?.throughput;
  const ceilings = [t('passthrough'), t('storeCeiling')].filter((x): x is number => x !== undefined && x > 0);
  const lower = ceilings.length ? Math.min(...ceilings) : undefined;
  const ratios: Record<string, number | null> = {
    'pipeline / passthrough': ratio(pipeline.throughput, t('passthrough')),
    'pipeline / storeCeiling': ratio(pipeline.throughput, t('storeCeiling')),
    'pipeline / lower ceiling': ratio(pipeline.throughput, lower),
    'pipeline / incumbent': ratio(pipeline.throughput, t('incumbent')),
    'pipeline / bullmq': ratio(pipeline.throughput, t('bullmq')),
    'p99 at half load: pipeline / passthrough': ratio(pipeline.p99, baselines.passthrough?.p99),
    'exactly-once / at-least-once': ratio(pipeline.throughput, t('pipelineAtLeastOnce')),
    'p99 at half load: exactly-once / at-least-once': ratio(pipeline.p99, baselines.pipelineAtLeastOnce?.p99),
    'other Kafka client / configured client (exactly-once throughput)': ratio(
      t('pipelineOtherClient'),
      pipeline.throughput,
    ),
    'p99 at half load: other Kafka client / configured client': ratio(
      baselines.pipelineOtherClient?.p99,
      pipeline.p99,
    ),
  };
  const at = (name: string, wanted: string, r: number | null, ok: (x: number) => boolean): TargetCheck => ({
    name,
    wanted,
    ratio: r,
    met: r === null ? null : ok(r),
  });
  const targets = [
    at('throughput vs the lower ceiling', '≥ 0.8', ratios['pipeline / lower ceiling']!, (x) => x >= 0.8),
    at('throughput vs incumbent', '≥ 10', ratios['pipeline / incumbent']!, (x) => x >= 10),
    at('throughput vs bullmq', '≥ 4', ratios['pipeline / bullmq']!, (x) => x >= 4),
    at(
      'p99 at half load vs passthrough',
      '≤ 3',
      ratios['p99 at half load: pipeline / passthrough']!,
      (x) => x <= 3,
    ),
    at(
      'exactly-once vs at-least-once throughput',
      '≥ 0.85',
      ratios['exactly-once / at-least-once']!,
      (x) => x >= 0.85,
    ),
    { name: 'pipeline correct', wanted: 'true', ratio: null, met: pipeline.correct },
  ];
  return { ratios, targets };
}

async function runScenario(shared: Shared, scenario: ScenarioFile): Promise<ScenarioResult> {
  const started = Date.now();
  const runId = `b${started.toString(36)}`;
  const set = buildEventSet(scenario, runId);
  const ctx: BenchContext = {
    ...shared,
    runId,
    scenario,
    set,
    deadline: started + scenario.timeLimitSeconds * 1000,
  };
  const ev = set.events;
  const late = ev.filter((e) => e.late).length;
  const duplicates = ev.filter((e) => e.duplicate).length;
  shared.progress.log(
    `\n${scenario.name}: ${ev.length} events (${set.source}), ${set.truth.entities} entities, ` +
      `${late} late, ${duplicates} duplicates, ` +
      `${set.truth.poison} poison, ${set.failing.size} failing transiently; limit ${scenario.timeLimitSeconds}s`,
  );
  const measurements: Measurement[] = [];
  const profiles: { mode: RunSpec['mode']; rate?: number; profile: Profile }[] = [];
  const wants = (n: ContestantName) =>
    PIPELINES.includes(n) || (scenario.baselines as readonly string[]).includes(n);
  const max = (): RunSpec => ({ mode: 'max', events: ev, until: ctx.deadline, check: true });
  const runOne = async (
    name: ContestantName,
    spec: RunSpec,
  ): Promise<{ m: Measurement; profile?: Profile | null }> => {
    const { value: out, rss } = await measurePeakRss(
      async (): Promise<{ m: Measurement; profile?: Profile | null }> => {
        if (name === 'pipeline') {
          const { profile, ...m } = await runPipeline(ctx, spec);
          return { m, profile };
        } else if (name === 'pipelineAtLeastOnce' || name === 'pipelineOtherClient') {
          const { profile: _, ...m } = await runPipeline(ctx, spec, name);
          return { m };
        } else if (name === 'passthrough') return { m: await runPassthrough(ctx, spec) };
        else if (name === 'storeCeiling') return { m: await runStoreCeiling(ctx, spec) };
        else if (name === 'incumbent') return { m: await runIncumbent(ctx, spec) };
        return { m: await runBullmq(ctx, spec, (await shared.redis()).port) };
      },
    );
    out.m.rss = rss;
    const lat = out.m.latency ? `, p99 ${out.m.latency.p99} ms` : '';
    shared.progress.end(
      `${out.m.throughput} events/s${lat}, peak RSS ${Math.round(rss.peakMb)} MB` +
        `${out.m.correct === false ? ', NOT correct' : ''}`,
    );
    return out;
  };

  if (!shared.warmedUp) {
    // The services are JVMs: the first thousands of requests run interpreted and would make whichever
    // contestant goes first look slow. A short discarded run of the store and the pipeline warms them.
    const slice = ev.slice(0, Math.min(ev.length, 2000));
    shared.progress.log('Warming up the services (not measured)...');
    await runStoreCeiling(ctx, { mode: 'max', events: slice, until: ctx.deadline, check: false });
    await runPipeline(ctx, { mode: 'max', events: slice, until: ctx.deadline, check: false });
    shared.progress.end('warm');
    shared.warmedUp = true;
  }

  // Maximum throughput: every contestant drains the set, round after round, interleaved so a slow
  // spell of the shared machine falls on all of them; each keeps its median run.
  const contestants = (
    [
      'passthrough',
      'storeCeiling',
      'pipeline',
      'pipelineAtLeastOnce',
      'pipelineOtherClient',
      'incumbent',
      'bullmq',
    ] as ContestantName[]
  ).filter(wants);
  const drains = new Map<ContestantName, { m: Measurement; profile?: Profile | null }[]>();
  for (let round = 1; round <= scenario.load.maxRepeats && !shared.aborted(); round++) {
    if (scenario.load.maxRepeats > 1) shared.progress.log(`  round ${round} of ${scenario.load.maxRepeats}`);
    for (const name of contestants) {
      if (shared.aborted() || (round > 1 && Date.now() > ctx.deadline)) break;
      const list = drains.get(name) ?? [];
      const replay = name === 'pipeline' && round === 1 && scenario.replay;
      list.push(await runOne(name, { ...max(), replay }));
      drains.set(name, list);
    }
  }
  for (const [, list] of drains) {
    const kept = medianRun(list);
    if (list.length > 1) {
      kept.m.notes.push(
        `max runs ${list.map((r) => r.m.throughput).join(', ')} events/s; the median is kept`,
      );
    }
    measurements.push(kept.m);
    if (kept.profile) profiles.push({ mode: 'max', profile: kept.profile });
  }
  const pipelineMax = measurements.find((m) => m.contestant === 'pipeline')!;
  const figures: Record<string, string | number> = {};
  for (const r of drains.get('pipeline') ?? []) Object.assign(figures, r.m.figures ?? {});
  for (const r of drains.get('pipelineAtLeastOnce') ?? []) {
    const key = 'mean delivery time, at-least-once (ms)';
    if (r.m.figures?.[key] !== undefined) figures[key] = r.m.figures[key];
  }
  for (const r of drains.get('pipelineOtherClient') ?? []) Object.assign(figures, r.m.figures ?? {});
  figures['Kafka client of the pipeline'] = ctx.config.kafkaAdapter;
  figures['Kafka client of pipelineOtherClient'] = otherClient(ctx.config);
  if (!shared.aborted()) Object.assign(figures, await measureClients(ctx));
  const eosMs = figures['mean delivery time, exactly-once (ms)'];
  const aloMs = figures['mean delivery time, at-least-once (ms)'];
  if (typeof eosMs === 'number' && typeof aloMs === 'number') {
    // The transaction (AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn) is what differs.
    figures['transaction cost per delivery (ms, exactly-once − at-least-once delivery time)'] =
      Math.round((eosMs - aloMs) * 10) / 10;
  }

  // Growth: the same set once more, on a store that already holds a long history.
  let growth: TargetCheck | undefined;
  if (scenario.preload && !shared.aborted() && Date.now() < ctx.deadline) {
    const { m } = await runOne('pipeline', { ...max(), preload: scenario.preload });
    const r = ratio(m.throughput, pipelineMax.throughput);
    figures['throughput, empty store (events/s)'] = pipelineMax.throughput;
    figures[`throughput, ${scenario.preload.conversions} archived conversions (events/s)`] = m.throughput;
    figures['preloaded / empty'] = r ?? '—';
    figures['preloaded run correct'] = String(m.correct);
    Object.assign(figures, m.figures ?? {});
    growth = {
      name: 'throughput with the preload vs empty',
      wanted: '≥ 0.8',
      ratio: r,
      met: r === null ? null : r >= 0.8,
    };
  }

  const openRuns: [ContestantName, number][] = [];
  for (const f of scenario.load.openLoop) {
    for (const n of PIPELINES) openRuns.push([n, f]);
    for (const b of scenario.load.openLoopBaselines) if (wants(b)) openRuns.push([b, f]);
  }
  for (const [name, f] of openRuns) {
    const rate = Math.round(Math.max(1, f * pipelineMax.throughput));
    // A contestant offered more than it can drain only queues: its latency would measure the backlog.
    const own = measurements.find((m) => m.contestant === name && m.mode === 'max')?.throughput;
    if (!PIPELINES.includes(name) && own !== undefined && own < rate) {
      shared.progress.log(`  ${name} @${rate}/s skipped: its own maximum is ${own}/s`);
      continue;
    }
    if (Date.now() > ctx.deadline || shared.aborted()) break;
    const n = Math.min(ev.length, Math.max(50, Math.round(rate * scenario.load.openLoopSeconds)));
    const { m, profile } = await runOne(name, {
      mode: 'open',
      rate,
      events: ev.slice(0, n),
      until: ctx.deadline,
      check: false,
    });
    measurements.push(m);
    if (profile) profiles.push({ mode: 'open', rate, profile });
  }

  const half = 0.5 * pipelineMax.throughput;
  // Where an event's time goes: under saturation (queueing before consumption left out, a drained
  // backlog makes it meaningless) and at the open load nearest half the maximum.
  const profile: Profile = {};
  const saturated = profiles.find((p) => p.mode === 'max')?.profile;
  for (const [k, v] of Object.entries(saturated ?? {}))
    if (!k.startsWith('produce')) profile[`max load: ${k}`] = v;
  const halfLoad = nearestRate(
    profiles.filter((p) => p.mode === 'open'),
    half,
    (p) => p.rate!,
  );
  for (const [k, v] of Object.entries(halfLoad?.profile ?? {}))
    profile[`@${Math.round(halfLoad!.rate!)}/s: ${k}`] = v;
  const of = (n: ContestantName) => measurements.filter((m) => m.contestant === n);
  const pipeline = contestantResult(of('pipeline'), half);
  const baselines: ScenarioResult['baselines'] = {};
  for (const b of BASELINE_ORDER) if (of(b).length) baselines[b] = contestantResult(of(b), half);
  const { ratios, targets } = ratiosAndTargets(pipeline, baselines);
  if (growth) targets.push(growth);
  const opts = RUNNER_DEFAULTS;
  figures['engine settings'] =
    `batch stages; fetch ≤ 1 MiB per partition, ${opts.partitionsAtOnce} partitions at once, ` +
    `flush at ${opts.flushMaxRecords} records or ${opts.flushIntervalMs} ms, fetch wait ${opts.fetchWaitMs} ms`;
  return {
    scenario: scenario.name,
    description: scenario.description,
    eventSet: {
      events: ev.length,
      entities: set.truth.entities,
      late,
      duplicates,
      poison: set.truth.poison,
      injectedFailures: set.failing.size,
      source: set.source,
    },
    pipeline,
    baselines,
    ratios,
    targets,
    profile: Object.keys(profile).length ? profile : null,
    figures,
    measurements,
    durationMs: Date.now() - started,
  };
}

function writeResults(dir: string, run: BenchRun): { json: string; report: string } {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = run.startedAt.replace(/[:.]/g, '-');
  const charts: Record<string, string> = {};
  const latestCharts: Record<string, string> = {};
  for (const s of run.scenarios) {
    const series = [
      { name: 'pipeline', points: s.pipeline.curve },
      ...Object.entries(s.baselines).map(([name, r]) => ({ name, points: r.curve })),
    ].filter((x) => x.points.length > 0);
    const svg = latencyChartSvg(series, { title: `${s.scenario}: latency vs offered load` });
    charts[s.scenario] = `${stamp}-${s.scenario}.svg`;
    latestCharts[s.scenario] = `latest-${s.scenario}.svg`;
    fs.writeFileSync(path.join(dir, charts[s.scenario]!), svg);
    fs.writeFileSync(path.join(dir, latestCharts[s.scenario]!), svg);
  }
  const json = path.join(dir, `${stamp}.json`);
  fs.writeFileSync(json, `${JSON.stringify(run, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify(run, null, 2)}\n`);
  const report = path.join(dir, `${stamp}.md`);
  fs.writeFileSync(report, markdownReport(run, charts));
  fs.writeFileSync(path.join(dir, 'latest.md'), markdownReport(run, latestCharts));
  return { json, report };
}

export async function runBench(opts: BenchOptions): Promise<number> {
  const scenarios = selectScenarios(opts.what);
  const { config } = await demoConfig(opts.out);
  const startedAt = new Date();
  const progress = new Progress(opts.terminal);
  let aborted = false;
  const onSignal = () => {
    if (aborted) process.exit(130);
    aborted = true;
    progress.log(
      'Interrupted: ending the current measurement and removing what the run made (Ctrl-C again to exit now).',
    );
  };
  process.on('SIGINT', onSignal);
  let store: Store | undefined;
  let redis: Promise<LocalRedis> | undefined;
  try {
    store = await connectStore(config, opts.log);
    const shared: Shared = {
      config,
      kafka: kafkajsInstance(config, opts.log, `${config.kafkaClientId}-bench`),
      codec: new RegistryCodec({ url: config.schemaRegistryUrl, auth: config.schemaRegistryAuth }),
      mongo: store.client,
      log: opts.log,
      progress,
      warmedUp: false,
      aborted: () => aborted,
      redis: () =>
        (redis ??= ensureRedisServer(opts.out).then(() =>
          startRedis({ dir: path.join(config.stateDir, 'bench-redis'), out: (l) => progress.log(l) }),
        )),
    };
    progress.log(`Running ${scenarios.map((s) => s.name).join(', ')} on ${os.cpus().length} cores.`);
    const results: ScenarioResult[] = [];
    for (const s of scenarios) {
      if (aborted) break;
      results.push(await runScenario(shared, s));
    }
    if (aborted) {
      opts.out(
        'Interrupted: the run was cleaned up and no results were written (a partial run would mislead).',
      );
      return 130;
    }
    const head = results[0]!;
    const run: BenchRun = {
      scenario: head.scenario,
      suite: opts.what,
      startedAt: startedAt.toISOString(),
      durationMs: Date.now() - startedAt.getTime(),
      machine: {
        cpus: os.cpus().length,
        node: process.version,
        platform: `${os.platform()} ${os.arch()}`,
        mongoServer: config.mongoServer,
      },
      pipeline: head.pipeline,
      baselines: head.baselines,
      ratios: head.ratios,
      scenarios: results,
    };
    const written = writeResults(opts.resultsDir ?? path.join('bench', 'results'), run);
    opts.out('');
    for (const s of results) {
      opts.out(`${s.scenario}:`);
      for (const [k, v] of Object.entries(s.ratios)) opts.out(`  ${k.padEnd(42)} ${v ?? '—'}`);
      for (const [k, v] of Object.entries(s.figures ?? {})) opts.out(`  ${k.padEnd(42)} ${v}`);
      opts.out(`  ${'pipeline peak RSS (MB)'.padEnd(42)} ${s.pipeline.peakRssMb ?? '—'}`);
      for (const t of s.targets)
        opts.out(`  target ${t.name} ${t.wanted}: ${t.met === null ? '—' : t.met ? 'met' : 'NOT met'}`);
    }
    opts.out(
      `\nWrote ${written.json}, bench/results/latest.json and the report ${written.report} (${Math.round(run.durationMs / 1000)}s).`,
    );
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    if (redis) await (await redis.catch(() => undefined))?.stop();
    await store?.close();
  }
}
