// What every fault scenario shares: the local stack it may stop and start (never an external one),
// an arena with a known event set, processor instances as real child processes, and the wait for
// recovery that ends in figures compared with the pure reducers' truth.
import { kafkajsClient } from '../kafka/kafkajs-client';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import type { MongoClient } from 'mongodb';
import { generate } from '../app/demo/generate';
import { stateOf } from '../appointments/decide';
import { appointments, changes } from '../appointments/tables';
import { openArena, closeArena, wireRecords, type Arena, type ArenaContext } from '../bench/arena';
import { groundTruth, type BenchEvent, type Truth } from '../bench/events';
import type { Config } from '../config';
import { rowsOf } from '../conversions/store';
import { KeyflowError } from '../errors';
import type { OffsetsReader } from '../kafka/types';
import type { Logger } from '../logger';
import { KeyedProducer } from '../producers/producer';
import type { WireRecord } from '../producers/types';
import type { RegistryCodec } from '../schemas/codec';
import { kafka as kafkaService } from '../services/kafka';
import { isAlive } from '../services/process';
import { registry as registryService } from '../services/registry';
import { mongo as mongoService } from '../services/mongo';
import { ensure, readPid } from '../services/stack';
import type { LocalService, StackContext } from '../services/types';
import { compareWithTruth, type FaultFigures, type TruthComparison } from './figures';
import { readDeadLetters } from './letters';
import { groupMembers } from './membership';

export interface FaultContext extends ArenaContext {
  config: Config;
  stack: StackContext;
  /**
   * Group membership read through Keyflow's client of the children's kind (KEYFLOW_KAFKA_CLIENT), which
   * describes classic and consumer-protocol (KIP-848) groups alike.
   */
  membership: OffsetsReader;
  /** The local stack's connection settings, handed to every child instance. */
  stackEnv: Record<string, string>;
  resultsDir: string;
  out: (line: string) => void;
  /** The CI-sized run: scenarios use their small event sets and fewer faults. */
  quick: boolean;
  /**
   * The delivery guarantee every processor child runs with (KEYFLOW_DELIVERY_GUARANTEE); unset, the
   * processor's default. The fault suite always sets it.
   */
  guarantee?: DeliveryGuarantee;
  /** Leave each arena (topics, groups, database) in place after its scenario, for inspection. */
  keep?: boolean;
  /** Prefixes of the arenas opened since the list was last reset (run.ts resets it per scenario). */
  arenas?: string[];
  /** Runs before a rig's instances are stopped, while they still serve /metrics (the alert check). */
  beforeClose?: (rig: Rig) => Promise<void>;
}

/** The two modes of the delivery guarantee setting; the suite runs exactly-once unless told otherwise. */
export const GUARANTEES = ['exactly-once', 'at-least-once'] as const;
export type DeliveryGuarantee = (typeof GUARANTEES)[number];

const SERVICES: Record<LocalService['name'], LocalService> = {
  kafka: kafkaService,
  registry: registryService,
  mongo: mongoService,
};

/**
 * The suite kills and restarts services, so it runs only against the stack of its own state dir: a
 * connection setting in the environment that points anywhere else is refused.
 */
export function externalSettings(env: NodeJS.ProcessEnv, local: Record<string, string>): string[] {
  return Object.entries(local)
    .filter(([k, v]) => env[k] !== undefined && env[k] !== '' && env[k] !== v)
    .map(([k]) => k);
}

export function refuseExternal(env: NodeJS.ProcessEnv, local: Record<string, string>): void {
  const bad = externalSettings(env, local);
  if (bad.length) {
    throw new KeyflowError(
      'USAGE',
      `faults stops and starts services, so it runs only on the local stack; unset ${bad.join(', ')} (it points at another stack)`,
    );
  }
}

/** Sends a signal to a service's process group (found by its pid file) and waits until it is gone. */
export async function signalService(
  ctx: FaultContext,
  name: LocalService['name'],
  signal: NodeJS.Signals,
): Promise<number> {
  const pid = readPid(ctx.stack, name);
  if (pid === undefined || !isAlive(pid)) {
    throw new KeyflowError('SERVICE_START_FAILED', `${name} is not running; run \`keyflow services up\``);
  }
  const at = Date.now();
  process.kill(-pid, signal);
  const deadline = Date.now() + 60_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) process.kill(-pid, 'SIGKILL');
    await sleep(100);
  }
  return Date.now() - at;
}

/** Starts a stopped service again with the stack's own start code; resolves once it answers. */
export async function restartService(ctx: FaultContext, name: LocalService['name']): Promise<void> {
  await ensure(ctx.stack, SERVICES[name]);
}

/** A processor instance in a child process; `exit` resolves with its code (null when killed). */
export interface Instance {
  child: ChildProcess;
  ready: Promise<void>;
  exit: Promise<number | null>;
  /** Milliseconds its drain took, as the child reported after a SIGTERM. */
  drainedMs?: number;
}

export interface Rig {
  ctx: FaultContext;
  arena: Arena;
  events: BenchEvent[];
  records: WireRecord[];
  truth: Truth;
  instances: Instance[];
  spawn(): Instance;
  compare(): Promise<TruthComparison>;
  /** Effects in the tables so far. */
  applied(): Promise<number>;
  /** Effects the truth holds. */
  expected: number;
}

export interface EventSetSpec {
  appointments: number;
  leads: number;
  conversionsPerLead: number;
  seed: number;
  /** Share of upstream re-sends (default 0.1). */
  duplicateShare?: number;
}

const DAY = 86_400_000;

function eventsOf(runId: string, spec: EventSetSpec): BenchEvent[] {
  return generate({
    seed: spec.seed,
    runId,
    tenants: 3,
    appointments: spec.appointments,
    leads: spec.leads,
    conversionsPerLead: spec.conversionsPerLead,
    lateShare: 0.05,
    duplicateShare: spec.duplicateShare ?? 0.1,
    start: Date.now() - 30 * DAY,
  }).map((p) =>
    p.topic === 'appointments'
      ? { flow: 'appointments', key: p.key, value: p.value, late: p.late, duplicate: p.duplicate }
      : { flow: 'conversions', key: p.key, value: p.value, late: p.late, duplicate: p.duplicate },
  );
}

async function publishTenants(ctx: FaultContext, arena: Arena, events: BenchEvent[]): Promise<void> {
  const tenants = new Set<string>();
  for (const e of events) if (e.value) tenants.add(e.value.tenantId);
  const producer = new KeyedProducer(kafkajsClient(ctx.kafka), ctx.codec);
  try {
    await producer.publish(
      [...tenants].map((t) => ({
        topic: arena.settingsTopic,
        key: t,
        value: { tenantId: t, settings: '{}' },
      })),
    );
  } finally {
    await producer.close();
  }
}

/** Settings of every child instance: a short session so a killed member is noticed in seconds. */
const CHILD_ENV = {
  KEYFLOW_SESSION_TIMEOUT_MS: '6000',
  KEYFLOW_HEARTBEAT_INTERVAL_MS: '1000',
  KEYFLOW_RETRY_BASE_MS: '50',
  KEYFLOW_RETRY_MAX_MS: '1000',
  // FAULTS_CHILD_LOG_LEVEL=info (or debug) to see more in <scenario>.instances.log.
  LOG_LEVEL: process.env.FAULTS_CHILD_LOG_LEVEL ?? 'warn',
};

/** Children still running: killed if the suite exits without stopping them (a crash, process.exit). */
const live = new Set<ChildProcess>();
let killOnExit = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (killOnExit) return;
  killOnExit = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

function spawnInstance(
  ctx: FaultContext,
  arena: Arena,
  label: string,
  n: number,
  env: Record<string, string> = {},
): Instance {
  const logPath = path.join(ctx.resultsDir, `${label}.instances.log`);
  const log = fs.openSync(logPath, 'a');
  fs.writeSync(log, `--- instance ${n} started ${new Date().toISOString()}\n`);
  const child = spawn(process.execPath, [path.join(__dirname, 'child.js')], {
    env: {
      ...process.env,
      ...ctx.stackEnv,
      ...CHILD_ENV,
      // Stated whatever the processor's default: the verdict on the change topics depends on it.
      ...(ctx.guarantee ? { KEYFLOW_DELIVERY_GUARANTEE: ctx.guarantee } : {}),
      ...env,
      MONGO_DB: arena.dbName,
      FAULT_PREFIX: arena.prefix,
      FAULT_PARTITIONS: String(ctx.scenario.partitions),
    },
    stdio: ['ignore', 'pipe', log],
  });
  fs.closeSync(log);
  track(child);
  const instance: Instance = {
    child,
    ready: Promise.resolve(),
    exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
  };
  instance.ready = new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      const text = String(d);
      fs.appendFileSync(logPath, text);
      if (text.includes('READY')) resolve();
      const stopped = /STOPPED \S+ (\d+)/.exec(text);
      if (stopped) instance.drainedMs = Number(stopped[1]);
    });
    void instance.exit.then((code) =>
      reject(new Error(`instance ${n} exited (${code}) before it was ready`)),
    );
  });
  instance.ready.catch(() => undefined);
  return instance;
}

export async function openRig(ctx: FaultContext, label: string, spec: EventSetSpec): Promise<Rig> {
  const at = Date.now();
  const step = (what: string) => ctx.out(`  ${label}: ${what} (${((Date.now() - at) / 1000).toFixed(1)} s)`);
  const arena = await openArena(ctx, label);
  ctx.arenas?.push(arena.prefix);
  step('topics, schemas and indexes ready');
  const events = eventsOf(`${ctx.runId}${label}`, spec);
  const truth = groundTruth(events);
  await publishTenants(ctx, arena, events);
  const records = await wireRecords(ctx, arena, events);
  step(`${records.length} records encoded`);
  let expected = truth.changeRows;
  for (const r of truth.conversions.values()) expected += r.count;
  const instances: Instance[] = [];
  const compare = async (): Promise<TruthComparison> => {
    const docs = await appointments(arena.db).find({}).toArray();
    return compareWithTruth(
      {
        appointments: new Map(docs.map((d) => [d._id, stateOf(d)])),
        changeRows: await changes(arena.db).countDocuments({}),
        conversions: await rowsOf(arena.db).find({}).toArray(),
      },
      truth,
    );
  };
  return {
    ctx,
    arena,
    events,
    records,
    truth,
    instances,
    expected,
    compare,
    applied: async () => {
      const [sum] = await rowsOf(arena.db)
        .aggregate<{ n: number }>([{ $group: { _id: null, n: { $sum: '$count' } } }])
        .toArray();
      return (await changes(arena.db).countDocuments({})) + (sum?.n ?? 0);
    },
    spawn() {
      const i = spawnInstance(ctx, arena, label, instances.length + 1);
      instances.push(i);
      return i;
    },
  };
}

export const running = (i: Instance) => i.child.exitCode === null && i.child.signalCode === null;

/** SIGKILLs the instance and resolves once it is gone. */
export async function killInstance(i: Instance): Promise<void> {
  if (running(i)) i.child.kill('SIGKILL');
  await i.exit;
}

/** Resolves once `test` holds, polling; false at the deadline. */
export async function waitFor(test: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await test().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await sleep(250);
  }
}

async function withAdmin<T>(kafka: Kafka, fn: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Input partitions whose group's committed offset is below the end of the partition. */
export async function behindPartitions(kafka: Kafka, arena: Arena): Promise<number> {
  return withAdmin(kafka, async (admin) => {
    let behind = 0;
    for (const flow of ['appointments', 'conversions'] as const) {
      const topic = arena.input[flow];
      const ends = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({ groupId: arena.groups[flow], topics: [topic] });
      for (const end of ends) {
        const c = committed?.partitions.find((p) => p.partition === end.partition);
        const at = c === undefined || Number(c.offset) < 0 ? Number(end.low) : Number(c.offset);
        if (at < Number(end.high)) behind++;
      }
    }
    return behind;
  });
}

/**
 * Waits for every effect of the truth to reach the tables (from `healedAt`), then for the groups to
 * commit to the end of every input partition, and turns what it finds into the scenario's figures.
 * Instances that exit on their own meanwhile are restarted, as a supervisor would, and named in notes.
 */
export async function recover(
  rig: Rig,
  scenario: string,
  healedAt: number,
  notes: string[],
  timeoutMs = 180_000,
): Promise<FaultFigures> {
  const { ctx, arena } = rig;
  const deadline = Date.now() + timeoutMs;
  let recoverMs: number | null = null;
  let restarts = 0;
  for (;;) {
    const live = rig.instances.filter(running);
    if (live.length === 0) {
      const last = rig.instances[rig.instances.length - 1];
      notes.push(`an instance exited by itself (code ${last?.child.exitCode}); restarted it`);
      restarts++;
      if (restarts > 5) break;
      rig.spawn();
    }
    const c = await rig.compare().catch(() => undefined);
    if (c && c.lost === 0 && c.wrong === 0) {
      recoverMs = Date.now() - healedAt;
      break;
    }
    if (Date.now() > deadline) break;
    await sleep(250);
  }
  // Commits follow the writes by a batch; a partition still behind after this is stalled.
  await waitFor(async () => (await behindPartitions(ctx.kafka, arena)) === 0, 30_000);
  const stalled = await behindPartitions(ctx.kafka, arena).catch(() => -1);
  const final = await rig.compare();
  for (const w of final.wrongSamples) notes.push(`wrong ${w}`);
  const letters = await readDeadLetters(ctx.kafka, ctx.config.kafkaBrokers, arena);
  const dead = letters.count;
  if (dead > 0) notes.push(`dead letters: ${letters.reasons.join(' | ')}`);
  if (letters.shortOf.length > 0)
    notes.push(`dead letters not read to the end: ${letters.shortOf.join(', ')}`);
  return {
    scenario,
    eventsIn: rig.records.length,
    effectsOut: final.effectsOut,
    lost: final.lost,
    duplicates: final.duplicates,
    wrong: final.wrong,
    stalled,
    deadLettered: dead,
    restarts,
    recoverMs,
    notes,
  };
}

export async function closeRig(rig: Rig): Promise<void> {
  await rig.ctx.beforeClose?.(rig);
  for (const i of rig.instances) await killInstance(i);
  if (rig.ctx.keep) {
    rig.ctx.out(
      `  kept the arena for inspection: database ${rig.arena.dbName}, topics and groups ${rig.arena.prefix}.*`,
    );
    return;
  }
  // A SIGKILLed member stays in its group until its session expires, and a group with a member cannot
  // be deleted: wait for the groups to empty, so the arena leaves no group behind.
  await waitFor(async () => (await groupMembers(rig.ctx.membership, rig.arena)) === 0, 20_000);
  await closeArena(rig.ctx, rig.arena);
}

export type { Kafka, MongoClient, RegistryCodec, Logger };

/**
 * Like `rig.spawn()`, with settings over the children's own and the stack's: group timeouts, say, or
 * KAFKA_BROKERS / MONGO_URL pointing at a fault proxy.
 */
export function spawnWithEnv(rig: Rig, label: string, env: Record<string, string>): Instance {
  const i = spawnInstance(rig.ctx, rig.arena, label, rig.instances.length + 1, env);
  rig.instances.push(i);
  return i;
}
