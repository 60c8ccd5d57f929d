// `keyflow faults <scenario|all>`: runs fault scenarios against the local stack of the state dir,
// prints one line per scenario and writes faults/results/latest.json and report.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient } from 'mongodb';
import { verifyOutputs, type ChangeFigures } from '../changes/kafkajs-read';
import { loadConfig } from '../config';
import { KeyflowError } from '../errors';
import type { Logger } from '../logger';
import { kafkajsInstance } from '../kafka/kafkajs-client';
import { kafkaClient } from '../kafka/client';
import { RegistryCodec } from '../schemas/codec';
import { kafka } from '../services/kafka';
import { mongo } from '../services/mongo';
import { registry } from '../services/registry';
import { stackContext, up } from '../services/stack';
import { passed, reportTable, summaryLine, type FaultFigures } from './figures';
import { EXPECTED_ALERTS, judgeAlerts, SuitePrometheus, type DashboardResult } from './prometheus';
import {
  externalSettings,
  GUARANTEES,
  refuseExternal,
  type DeliveryGuarantee,
  type FaultContext,
} from './rig';
import { SCENARIOS } from './scenarios';

export interface FaultsOptions {
  what: string;
  log: Logger;
  out: (line: string) => void;
  resultsDir?: string;
  /** The CI-sized version of each scenario. */
  quick?: boolean;
  /** Leave each scenario's arena in place instead of removing it. */
  keep?: boolean;
  /** The processors' delivery guarantee (default exactly-once); at-least-once for comparison. */
  guarantee?: string;
}

function guaranteeOf(given: string | undefined): DeliveryGuarantee {
  const g = given ?? 'exactly-once';
  if (!(GUARANTEES as readonly string[]).includes(g)) {
    throw new KeyflowError('USAGE', `--guarantee takes ${GUARANTEES.join(' or ')}, not "${g}"`);
  }
  return g as DeliveryGuarantee;
}

export function selectScenarios(what: string) {
  if (what === 'all') return SCENARIOS;
  if (what === 'quick') return SCENARIOS.filter((s) => s.quick);
  const one = SCENARIOS.find((s) => s.name === what);
  if (!one) {
    throw new KeyflowError(
      'USAGE',
      `no fault scenario "${what}"; pick one of ${SCENARIOS.map((s) => s.name).join(', ')}, quick or all`,
    );
  }
  return [one];
}

const CONNECTION_SETTINGS = ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'MONGO_URL'] as const;

/** Returns the exit code: 0 when every scenario ended with nothing lost, doubled, wrong or stalled. */
export async function runFaults(opts: FaultsOptions): Promise<number> {
  const chosen = selectScenarios(opts.what);
  const guarantee = guaranteeOf(opts.guarantee);
  const first = loadConfig(process.env, { require: [] });
  const stack = stackContext(first, (line) => opts.out(`[services] ${line}`));
  const local = {
    ...kafka.endpoint(stack).env,
    ...registry.endpoint(stack).env,
    ...mongo.endpoint(stack).env,
  };
  // Scenarios that only signal processors may run on any stack (`npm test` runs the quick ones on the
  // test stack); one that stops a service runs only on the local stack of this state dir.
  let stackEnv: Record<string, string> = local;
  if (chosen.some((s) => s.stopsServices)) {
    refuseExternal(process.env, local);
    await up(stack);
  } else if (externalSettings(process.env, local).length === 0) {
    await up(stack);
  } else {
    stackEnv = Object.fromEntries(CONNECTION_SETTINGS.map((k) => [k, process.env[k] ?? local[k] ?? '']));
  }
  const config = loadConfig({ ...process.env, ...stackEnv });
  const resultsDir = path.resolve(opts.resultsDir ?? path.join('faults', 'results'));
  fs.mkdirSync(resultsDir, { recursive: true });
  // The CI-sized run checks the tables only; the full run also watches alerts and the dashboard.
  const quick = opts.quick ?? opts.what === 'quick';
  const prom = quick
    ? undefined
    : await SuitePrometheus.start(path.join(stack.stateDir, 'faults-prometheus'), config.prometheusPort);
  if (prom) {
    opts.out(
      `[prometheus] scraping the fault children at ${prom.url} (rules: alerts.yml with for: in seconds)`,
    );
  }
  const client = new MongoClient(config.mongoUrl);
  await client.connect().catch(async (err: unknown) => {
    await prom?.close();
    throw err;
  });
  const ctx: FaultContext = {
    config,
    stack,
    stackEnv: { ...stackEnv, ...(prom?.childEnv() ?? {}) },
    quick,
    guarantee,
    keep: opts.keep === true,
    resultsDir,
    out: opts.out,
    kafka: kafkajsInstance(config, opts.log, 'keyflow-faults'),
    membership: kafkaClient(config, opts.log, 'keyflow-faults-membership').offsets(),
    codec: new RegistryCodec({ url: config.schemaRegistryUrl }),
    mongo: client,
    log: opts.log,
    runId: Date.now().toString(36),
    scenario: { partitions: 6 },
    // Its own names, so a benchmark's check for leftovers never sees a fault run's arenas, nor the reverse.
    arenaRoot: 'faults',
  };
  const started = Date.now();
  const rows: FaultFigures[] = [];
  let dashboard: DashboardResult[] = [];
  try {
    for (const s of chosen) {
      opts.out(`running ${s.name}: ${s.description}`);
      const arenas: string[] = [];
      ctx.arenas = arenas;
      const at = Date.now();
      let closedAt: number | undefined;
      // While the scenario's processors still run: wait for its alerts to resolve, then stop scraping
      // them, so stopping them on purpose does not read as an outage.
      const expected = EXPECTED_ALERTS[s.name] ?? [];
      // One check per rig the scenario opened, each reading every change topic its dataflows write.
      const changeChecks: (ChangeFigures | string)[] = [];
      ctx.beforeClose = async (rig) => {
        // The tables have converged: read every change topic as an analytics consumer would.
        changeChecks.push(
          await verifyOutputs(ctx.kafka, config.kafkaBrokers, config.schemaRegistryUrl, rig.arena.db, [
            rig.arena.output.appointments,
            rig.arena.output.conversions,
          ]).catch((err: unknown) => `could not verify the change topics: ${String(err)}`),
        );
        if (!prom) return;
        if (!(await prom.untilResolved(expected, 120_000))) {
          opts.out(`  [prometheus] ${expected.join(', ')} still firing 120 s after the scenario ended`);
        } else if (expected.length > 0) {
          // The verdict reads the alerts back at 1 s steps and calls one still firing in the last
          // step "open": leave a few steps between the resolution and the end of the window.
          await sleep(3000);
        }
        closedAt = Date.now();
        prom.clearTargets();
      };
      let f: FaultFigures;
      try {
        f = await s.run(ctx);
      } catch (err) {
        f = {
          scenario: s.name,
          eventsIn: 0,
          effectsOut: 0,
          lost: 0,
          duplicates: 0,
          wrong: 0,
          stalled: 0,
          deadLettered: 0,
          restarts: 0,
          recoverMs: null,
          notes: [`the scenario itself failed: ${(err as Error).message}`],
        };
      }
      // Unset unless every rig's topics were read: a topic not read has not been shown exact.
      if (changeChecks.length > 0 && changeChecks.every((c) => typeof c !== 'string')) {
        f.duplicateChanges = 0;
        f.missingChanges = 0;
      }
      for (const c of changeChecks) {
        if (typeof c === 'string') {
          f.notes.push(c);
          continue;
        }
        if (f.duplicateChanges !== undefined) f.duplicateChanges += c.duplicateChanges;
        if (f.missingChanges !== undefined) f.missingChanges += c.missingChanges;
        f.notes.push(...c.lines);
      }
      if (prom) {
        prom.clearTargets();
        const end = (closedAt ?? Date.now()) / 1000;
        const spans = await prom.alertSpans(at / 1000, end).catch((err: unknown) => {
          f.notes.push(`could not read the alerts back: ${String(err)}`);
          return [];
        });
        const verdict = judgeAlerts(spans, expected, at / 1000, end, arenas);
        f.notes.push(...verdict.lines);
        if (verdict.missing.length) {
          f.alertFailures = verdict.missing;
          f.notes.push(`expected alerts missing: ${verdict.missing.join('; ')}`);
        }
      }
      f.notes.push(`scenario took ${Math.round((Date.now() - at) / 1000)} s`);
      rows.push(f);
      opts.out(summaryLine(f));
      for (const n of f.notes) opts.out(`  ${n}`);
    }
    if (prom) dashboard = await prom.dashboardCheck(started / 1000, Date.now() / 1000);
  } finally {
    await client.close();
    await ctx.membership.close();
    await prom?.close();
  }
  const empty = dashboard.filter((d) => d.series === 0);
  for (const d of dashboard) {
    opts.out(
      `dashboard ${d.series > 0 ? 'ok   ' : 'EMPTY'} ${d.series} series: ${d.panel}: ${d.query}${d.error ? ` (${d.error})` : ''}`,
    );
  }
  if (prom) {
    opts.out(`dashboard: ${dashboard.length - empty.length} of ${dashboard.length} queries returned series`);
  }
  const run = {
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    machine: { cpus: os.cpus().length, node: process.version, mongoServer: config.mongoServer },
    guarantee,
    kafkaClient: config.kafkaAdapter,
    scenarios: rows,
    dashboard,
  };
  fs.writeFileSync(path.join(resultsDir, 'latest.json'), `${JSON.stringify(run, null, 2)}\n`);
  const report = [
    `# Fault suite, ${run.startedAt}`,
    '',
    `${run.machine.cpus} CPUs, Node ${run.machine.node}, Mongo-protocol server ${run.machine.mongoServer}; processors in ${guarantee} mode on the ${config.kafkaAdapter} client.`,
    '',
    ...reportTable(rows),
    '',
    ...rows.flatMap((f) => [`- ${f.scenario}: ${f.notes.join('; ')}`]),
    '',
    ...(prom
      ? [
          `Dashboard queries on the suite's Prometheus over the run: ${dashboard.length - empty.length} of ${dashboard.length} returned series.`,
          '',
          ...dashboard.map(
            (d) => `- ${d.series > 0 ? 'ok' : 'EMPTY'} (${d.series}) ${d.panel}: \`${d.query}\``,
          ),
          '',
        ]
      : ['The quick run checks the tables only: no Prometheus, no alert or dashboard check.', '']),
  ];
  fs.writeFileSync(path.join(resultsDir, 'report.md'), report.join('\n'));
  opts.out(`wrote ${path.relative(process.cwd(), path.join(resultsDir, 'report.md'))}`);
  return rows.every(passed) && empty.length === 0 ? 0 : 1;
}
