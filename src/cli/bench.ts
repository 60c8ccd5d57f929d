// `keyflow bench <scenario|quick|all>` (`npm run bench -- quick`): the benchmark and its baselines.
import { runBench } from '../bench/run';
import { runMemory } from '../bench/memory';
import { runScaling, SCALING_CLIENTS } from '../bench/scaling';
import type { ScalingClient } from '../bench/scaling-report';
import path from 'node:path';
import { runQueriesBench, writeQueriesResult } from '../bench/queries';
import { loadConfig, redactUrl } from '../config';
import { createLogger, type Logger } from '../logger';
import { connectStore } from '../state/mongo';
import { KeyflowError } from '../errors';
import { defineCommand, usageError } from './args';

/** The declared queries against 1,000 and 1,000,000 unrelated rows, in a database of its own (dropped after). */
async function benchQueries(log: Logger): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const env = process.env;
  const sizes = (env.BENCH_QUERY_ROWS ?? '1000,1000000').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new KeyflowError('USAGE', 'BENCH_QUERY_ROWS must list whole numbers, e.g. 1000,1000000');
  }
  const only = env.BENCH_QUERY_ONLY?.split(',').filter(Boolean);
  const config = loadConfig(env, { require: ['mongoUrl'] });
  const store = await connectStore(config, log);
  const stamp = Date.now().toString(36);
  const dbs = sizes.map((n) => store.client.db(`kfbench_queries_${stamp}_${n}`));
  try {
    out(
      `Declared queries on ${redactUrl(config.mongoUrl)} (${config.mongoServer}), databases kfbench_queries_${stamp}_<rows>:`,
    );
    const r = await runQueriesBench(dbs, {
      server: `${config.mongoServer} at ${redactUrl(config.mongoUrl)}`,
      out,
      sizes,
      only,
    });
    const file = writeQueriesResult(path.join('bench', 'results'), r);
    const above = r.figures.filter((f) => f.ratio > 2);
    out(
      `\n${r.figures.length} queries; ${above.length} above 2: ${above.map((f) => `${f.collection}: ${f.query} (${f.ratio})`).join('; ') || 'none'}`,
    );
    out(`Wrote ${file}.`);
    return 0;
  } finally {
    for (const db of dbs) await db.dropDatabase().catch(() => undefined);
    await store.close();
  }
}

/** BENCH_SCALING_CLIENTS: the clients the scaling and memory runs measure (default both, kafkajs first). */
function scalingClients(value: string | undefined): ScalingClient[] | undefined {
  if (value === undefined || value === '') return undefined;
  const named = value.split(',').map((c) => c.trim());
  const bad = named.find((c) => !(SCALING_CLIENTS as string[]).includes(c));
  if (bad !== undefined)
    throw new KeyflowError(
      'USAGE',
      `BENCH_SCALING_CLIENTS: no client "${bad}"; name ${SCALING_CLIENTS.join(' and/or ')}`,
    );
  return named as ScalingClient[];
}

/** BENCH_MEMORY_SNAPSHOT: when the memory run takes its heap snapshot (rest, drain or none). */
function memorySnapshot(value: string | undefined): 'rest' | 'drain' | 'none' | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'rest' || value === 'drain' || value === 'none') return value;
  throw new KeyflowError('USAGE', `BENCH_MEMORY_SNAPSHOT: "${value}" is not one of rest, drain, none`);
}

export const benchCommand = defineCommand({
  name: 'bench',
  operands: '<scenario|quick|all|scaling|memory|queries>',
  summary: 'measure the pipeline against same-run baselines; writes bench/results/latest.json and a report',
  options: {},
  async run({ positionals }) {
    const [what, ...extra] = positionals;
    if (!what)
      throw new KeyflowError('USAGE', 'name a scenario, `quick`, `all` or `scaling` (see bench/scenarios/)');
    if (extra.length) throw usageError(benchCommand, `one scenario at a time, got "${extra[0]}" too`);
    // The engine logs only errors here: a retry warning per injected failure would bury the progress bar.
    const log = createLogger(process.env.LOG_LEVEL ?? 'error');
    // The scaling curve runs processor children instead of contestants: a mode of its own.
    if (what === 'scaling')
      return runScaling({
        log,
        out: (line) => process.stdout.write(`${line}\n`),
        clients: scalingClients(process.env.BENCH_SCALING_CLIENTS),
      });
    if (what === 'memory')
      return runMemory({
        log,
        out: (line) => process.stdout.write(`${line}\n`),
        clients: scalingClients(process.env.BENCH_SCALING_CLIENTS) ?? SCALING_CLIENTS,
        snapshot: memorySnapshot(process.env.BENCH_MEMORY_SNAPSHOT),
      });
    if (what === 'queries') return benchQueries(log);
    return runBench({
      what,
      log,
      out: (line) => process.stdout.write(`${line}\n`),
      terminal: process.stdout,
    });
  },
});
