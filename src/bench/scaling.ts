// `keyflow bench scaling` (`npm run bench -- scaling`): the scaling curve. Real processor children (the
// fault suite's) drain the same backlog as 1, 2 and 3 instances over 6 and 12 partitions; under a
// paced load each join's rebalance pause is measured; then a rolling restart of 3 instances under
// three group settings. Each Kafka client runs the whole set in turn (kafkajs: classic eager rebalances;
// @platformatic/kafka: KIP-848 incremental), so their pauses sit side by side from one run. Writes
// bench/results/scaling-latest.{json,md}. On demand only: minutes long.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  killInstance,
  spawnWithEnv,
  waitFor,
  type EventSetSpec,
  type FaultContext,
  type Instance,
  type Rig,
} from '../faults/rig';
import { untilStable } from '../faults/membership';
import { longestGap, pausesOf, sampleApplied, startReady, type Change } from '../faults/scale';
import { publishAll, publishPaced } from './arena';
import { childContext, closeChildContext, withRig, type ChildRunOptions } from './children';
import { KAFKA_CLIENTS } from './clients';
import {
  scalingReport,
  type DrainPoint,
  type JoinPause,
  type RollingResult,
  type ScalingClient,
  type ScalingRun,
} from './scaling-report';
import { ratio } from './stats';

export interface ScalingOptions extends ChildRunOptions {
  /** The Kafka clients whose children are measured, in this order; both by default. */
  clients?: ScalingClient[];
}

export const SCALING_CLIENTS: ScalingClient[] = [...KAFKA_CLIENTS];

/** About 10,000 records: the backlog each instance count drains. */
const DRAIN: EventSetSpec = { appointments: 800, leads: 1200, conversionsPerLead: 5, seed: 20261216 };
/**
 * About 13,000 records, paced: the load the joins and the rolling restarts happen under. At 150/s that
 * lasts longer than a rolling restart with the default settings, so its last step still has work to
 * pause; what is left when the steps are done is published at once.
 */
const PACED: EventSetSpec = { appointments: 1100, leads: 1800, conversionsPerLead: 5, seed: 20261217 };
const PACED_RATE = 150;
const INSTANCES = [1, 2, 3];
const PARTITIONS = [6, 12];
const DWELL_MS = 5_000;

/** Group settings a rolling restart is measured under; `signal` is how each instance is stopped. */
export const ROLLING_VARIANTS = [
  {
    name: 'defaults, SIGTERM',
    env: {
      KEYFLOW_SESSION_TIMEOUT_MS: '30000',
      KEYFLOW_HEARTBEAT_INTERVAL_MS: '3000',
      KEYFLOW_REBALANCE_TIMEOUT_MS: '60000',
    },
    signal: 'SIGTERM' as const,
  },
  {
    name: 'session 6 s, heartbeat 500 ms, SIGTERM',
    env: {
      KEYFLOW_SESSION_TIMEOUT_MS: '6000',
      KEYFLOW_HEARTBEAT_INTERVAL_MS: '500',
      KEYFLOW_REBALANCE_TIMEOUT_MS: '60000',
    },
    signal: 'SIGTERM' as const,
  },
  {
    name: 'session 6 s, heartbeat 500 ms, SIGKILL (no leave)',
    env: {
      KEYFLOW_SESSION_TIMEOUT_MS: '6000',
      KEYFLOW_HEARTBEAT_INTERVAL_MS: '500',
      KEYFLOW_REBALANCE_TIMEOUT_MS: '60000',
    },
    signal: 'SIGKILL' as const,
  },
];

async function exact(rig: Rig): Promise<boolean> {
  const c = await rig.compare();
  return c.lost === 0 && c.duplicates === 0 && c.wrong === 0;
}

/** `n` instances, Stable, then the whole backlog: from the first record published to the last effect. */
async function drain(
  ctx: FaultContext,
  partitions: number,
  n: number,
  notes: string[],
): Promise<Omit<DrainPoint, 'vsOne' | 'client'>> {
  return withRig(ctx, partitions, `scaling-drain-p${partitions}-n${n}`, DRAIN, async (rig) => {
    const children: Instance[] = [];
    for (let i = 0; i < n; i++) children.push(await startReady(() => rig.spawn(), notes));
    if ((await untilStable(ctx.membership, rig.arena, n)) === undefined)
      throw new Error(`${n} instances never Stable`);
    const at = Date.now();
    await publishAll(ctx.kafka, rig.records);
    await waitFor(async () => (await rig.applied()) >= rig.expected, 300_000);
    const elapsedMs = Date.now() - at;
    return {
      partitions,
      instances: n,
      events: rig.records.length,
      elapsedMs,
      throughput: Math.round(rig.records.length / (elapsedMs / 1000)),
      correct: await exact(rig),
    };
  });
}

/**
 * Runs `steps` under the paced load and returns the changes they made with their pauses; the load is
 * stopped once they are done and the rest of the set published at once, so the tables can be checked.
 */
async function underLoad(
  rig: Rig,
  first: () => Instance[],
  firstSize: number,
  steps: (changes: Change[]) => Promise<void>,
): Promise<{ changes: Change[]; normalGapMs: number; correct: boolean }> {
  const { ctx } = rig;
  for (const c of first()) await c.ready;
  await untilStable(ctx.membership, rig.arena, firstSize);
  const sampler = sampleApplied(rig);
  let stop = false;
  const start = Date.now();
  const publishing = publishPaced(ctx.kafka, rig.records, PACED_RATE, () => stop);
  await new Promise((r) => setTimeout(r, DWELL_MS));
  const changes: Change[] = [];
  await steps(changes);
  stop = true;
  const sent = await publishing;
  await publishAll(ctx.kafka, rig.records.slice(sent));
  await waitFor(async () => (await rig.applied()) >= rig.expected, 180_000);
  await sampler.stop();
  const normal = longestGap(sampler.samples, start + 1_000, changes[0]?.at ?? start, rig.expected);
  return {
    changes: pausesOf(changes, sampler.samples, rig.expected),
    normalGapMs: normal.ms,
    correct: await exact(rig),
  };
}

async function joins(
  ctx: FaultContext,
  partitions: number,
  notes: string[],
): Promise<Omit<JoinPause, 'client'>[]> {
  return withRig(ctx, partitions, `scaling-join-p${partitions}`, PACED, async (rig) => {
    const r = await underLoad(
      rig,
      () => [rig.spawn()],
      1,
      async (changes) => {
        for (const size of [2, 3]) {
          const c: Change = { what: `join ${size - 1} → ${size}`, at: Date.now() };
          await startReady(() => rig.spawn(), notes);
          c.stableAt = await untilStable(ctx.membership, rig.arena, size);
          changes.push(c);
          await new Promise((res) => setTimeout(res, DWELL_MS));
        }
      },
    );
    if (!r.correct) throw new Error(`the join run over ${partitions} partitions did not end exact`);
    return r.changes.map((c) => ({
      partitions,
      what: c.what,
      stableMs: c.stableAt === undefined ? null : c.stableAt - c.at,
      pauseMs: c.pause!.ms,
      normalGapMs: r.normalGapMs,
    }));
  });
}

async function rolling(
  ctx: FaultContext,
  variant: (typeof ROLLING_VARIANTS)[number],
  notes: string[],
): Promise<Omit<RollingResult, 'client'>> {
  const label = 'scaling-rolling';
  return withRig(ctx, 6, label, PACED, async (rig) => {
    const live: Instance[] = [];
    const r = await underLoad(
      rig,
      () => {
        for (let i = 0; i < 3; i++) live.push(spawnWithEnv(rig, label, variant.env));
        return live;
      },
      3,
      async (changes) => {
        for (let step = 0; step < 3; step++) {
          const c: Change = { what: `restart ${step + 1}`, at: Date.now() };
          const old = live.shift()!;
          if (variant.signal === 'SIGKILL') await killInstance(old);
          else {
            old.child.kill('SIGTERM');
            await old.exit;
          }
          live.push(await startReady(() => spawnWithEnv(rig, label, variant.env), notes));
          c.stableAt = await untilStable(ctx.membership, rig.arena, 3);
          changes.push(c);
          await new Promise((res) => setTimeout(res, DWELL_MS));
        }
      },
    );
    const steps = r.changes.map((c) => ({
      stepMs: c.stableAt === undefined ? null : c.stableAt - c.at,
      pauseMs: c.pause!.ms,
    }));
    return {
      variant: variant.name,
      steps,
      totalMs: steps.reduce((s, x) => s + (x.stepMs ?? 0), 0),
      totalPauseMs: steps.reduce((s, x) => s + x.pauseMs, 0),
      correct: r.correct,
    };
  });
}

/** One client's drains, joins and rolling restarts, appended to `run`. */
async function measureClient(opts: ScalingOptions, client: ScalingClient, run: ScalingRun): Promise<string> {
  const ctx = await childContext(opts, client, 'scaling');
  try {
    for (const p of PARTITIONS) {
      let one: number | undefined;
      for (const n of INSTANCES) {
        const d = await drain(ctx, p, n, run.notes);
        if (n === 1) one = d.throughput;
        const point = { ...d, client, vsOne: ratio(d.throughput, one) };
        run.drains.push(point);
        opts.out(
          `${client}, ${p} partitions, ${n} instance(s): ${d.throughput} events/s (${point.vsOne ?? '—'} of 1)${d.correct ? '' : ', NOT exact'}`,
        );
      }
      for (const j of await joins(ctx, p, run.notes)) {
        run.joins.push({ ...j, client });
        opts.out(
          `${client}, ${p} partitions, ${j.what}: Stable after ${j.stableMs ?? 'never'} ms, pause ${j.pauseMs} ms`,
        );
      }
    }
    for (const v of ROLLING_VARIANTS) {
      const r = await rolling(ctx, v, run.notes);
      run.rolling.push({ ...r, client });
      opts.out(
        `${client}, rolling restart, ${v.name}: total ${r.totalMs} ms, pauses ${r.steps.map((s) => s.pauseMs).join(', ')} ms`,
      );
    }
    return ctx.resultsDir;
  } finally {
    await closeChildContext(ctx);
  }
}

export async function runScaling(opts: ScalingOptions): Promise<number> {
  const clients = opts.clients ?? SCALING_CLIENTS;
  const started = new Date();
  const run: ScalingRun = {
    startedAt: started.toISOString(),
    durationMs: 0,
    machine: { cpus: os.cpus().length, node: process.version, loadavg: os.loadavg() },
    pacedRate: PACED_RATE,
    clients,
    drains: [],
    joins: [],
    rolling: [],
    notes: [],
  };
  let dir = path.resolve(opts.resultsDir ?? path.join('bench', 'results'));
  for (const client of clients) dir = await measureClient(opts, client, run);
  run.durationMs = Date.now() - started.getTime();
  fs.writeFileSync(path.join(dir, 'scaling-latest.json'), `${JSON.stringify(run, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, 'scaling-latest.md'), scalingReport(run));
  opts.out(
    `Wrote ${path.relative(process.cwd(), path.join(dir, 'scaling-latest.md'))} (${Math.round(run.durationMs / 1000)} s).`,
  );
  const exactAll = run.drains.every((d) => d.correct) && run.rolling.every((r) => r.correct);
  return exactAll ? 0 : 1;
}
