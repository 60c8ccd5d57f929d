// `keyflow services up|down|status`: the real local stack (Kafka, schema registry, Mongo-protocol
// server) as processes we start, track by pid under .keyflow/pids, and stop by pid.
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import { servicesEnvPath } from '../config';
import { KeyflowError } from '../errors';
import { kafka } from './kafka';
import { mongo } from './mongo';
import { isAlive, logFile, pidFile, portOpen, readSince, sizeOf, StartupWatch, tail } from './process';
import { registry } from './registry';
import { dirBytes, type ServiceStatus } from './status';
import type { LocalService, StackContext } from './types';

/**
 * How long a service may take to answer without a sign of progress. A launcher that reports progress
 * (mongo-java-server opening or compacting a large store) extends its wait with every line it logs.
 */
const READY_QUIET_MS: Record<LocalService['name'], number> = {
  kafka: 120_000,
  registry: 120_000,
  mongo: 60_000,
};
/** However it reports, a start-up this long is stuck (a heartbeat thread can outlive a hung open). */
const READY_MAX_MS = 30 * 60_000;

export function stackContext(cfg: Config, progress: (line: string) => void = () => {}): StackContext {
  return {
    stateDir: path.resolve(cfg.stateDir),
    cacheDir: path.resolve(cfg.cacheDir),
    ports: {
      kafka: cfg.kafkaPort,
      kafkaController: cfg.kafkaControllerPort,
      registry: cfg.registryPort,
      mongo: cfg.mongoPort,
    },
    kafkaVersion: cfg.kafkaVersion,
    mongoServer: cfg.mongoServer,
    progress,
  };
}

function portOf(ctx: StackContext, svc: LocalService): number {
  return svc.name === 'kafka'
    ? ctx.ports.kafka
    : svc.name === 'registry'
      ? ctx.ports.registry
      : ctx.ports.mongo;
}

function portSetting(svc: LocalService): string {
  return { kafka: 'KEYFLOW_KAFKA_PORT', registry: 'KEYFLOW_REGISTRY_PORT', mongo: 'KEYFLOW_MONGO_PORT' }[
    svc.name
  ];
}

export function readPid(ctx: StackContext, name: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(pidFile(ctx, name), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function writePid(ctx: StackContext, name: string, pid: number): void {
  fs.mkdirSync(path.dirname(pidFile(ctx, name)), { recursive: true });
  fs.writeFileSync(pidFile(ctx, name), `${pid}\n`);
}

/** What a started process runs, kept beside its pid: the settings may have changed since it started. */
function labelFile(ctx: StackContext, name: string): string {
  return `${pidFile(ctx, name).replace(/\.pid$/, '')}.label`;
}

function readLabel(ctx: StackContext, name: string): string | undefined {
  try {
    return fs.readFileSync(labelFile(ctx, name), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitReady(
  ctx: StackContext,
  svc: LocalService,
  pid: number,
  logOffset = sizeOf(logFile(ctx, svc.name)),
): Promise<void> {
  const log = logFile(ctx, svc.name);
  const quietMs = READY_QUIET_MS[svc.name];
  const watch = new StartupWatch(quietMs, Date.now());
  const giveUp = Date.now() + READY_MAX_MS;
  let offset = logOffset;
  const relay = () => {
    const read = readSince(log, offset);
    offset = read.offset;
    for (const line of watch.observe(read.text, Date.now())) ctx.progress(`${svc.name}: ${line}`);
  };
  for (;;) {
    if (await svc.ready(ctx)) {
      // What it logged since the last look (a store compacted just before it answered) is relayed too.
      relay();
      return;
    }
    relay();
    if (!isAlive(pid)) {
      throw new KeyflowError(
        'SERVICE_START_FAILED',
        `${svc.name} exited during start-up; last lines of ${log}:\n${tail(log)}`,
        { retriable: false },
      );
    }
    if (watch.expired(Date.now()) || Date.now() > giveUp) break;
    await sleep(500);
  }
  const why = watch.expired(Date.now())
    ? `did not answer and reported no progress for ${quietMs / 1000}s`
    : `did not answer within ${READY_MAX_MS / 60_000} minutes`;
  throw new KeyflowError('SERVICE_START_FAILED', `${svc.name} ${why}; last lines of ${log}:\n${tail(log)}`, {
    retriable: false,
  });
}

/** Starts one service unless our own copy already answers; refuses a port held by someone else. */
export async function ensure(ctx: StackContext, svc: LocalService): Promise<'running' | 'started'> {
  const pid = readPid(ctx, svc.name);
  if (pid !== undefined && isAlive(pid)) {
    await waitReady(ctx, svc, pid);
    return 'running';
  }
  if (await portOpen(portOf(ctx, svc))) {
    throw new KeyflowError(
      'SERVICE_PORT_BUSY',
      `port ${portOf(ctx, svc)} for ${svc.name} is taken by a process we did not start; stop it or set ${portSetting(svc)} to a free port`,
      { retriable: false },
    );
  }
  await svc.install(ctx);
  ctx.progress(`starting ${svc.name} on 127.0.0.1:${portOf(ctx, svc)}`);
  const logOffset = sizeOf(logFile(ctx, svc.name));
  const started = await svc.start(ctx);
  writePid(ctx, svc.name, started);
  fs.writeFileSync(labelFile(ctx, svc.name), `${svc.label(ctx)}\n`);
  try {
    await waitReady(ctx, svc, started, logOffset);
  } catch (err) {
    await stopPid(started);
    fs.rmSync(pidFile(ctx, svc.name), { force: true });
    fs.rmSync(labelFile(ctx, svc.name), { force: true });
    throw err;
  }
  return 'started';
}

/** Brings the whole stack up (idempotent) and writes `.keyflow/services.env`. Returns its settings. */
export async function up(ctx: StackContext): Promise<Record<string, string>> {
  fs.mkdirSync(ctx.stateDir, { recursive: true });
  // Refuse a taken port before starting anything, rather than half-starting the stack.
  for (const svc of [kafka, mongo, registry]) {
    const pid = readPid(ctx, svc.name);
    if (pid !== undefined && isAlive(pid)) continue;
    const ports: [number, string][] = [[portOf(ctx, svc), portSetting(svc)]];
    if (svc.name === 'kafka') ports.push([ctx.ports.kafkaController, 'KEYFLOW_KAFKA_CONTROLLER_PORT']);
    for (const [port, setting] of ports) {
      if (await portOpen(port)) {
        throw new KeyflowError(
          'SERVICE_PORT_BUSY',
          `port ${port} for ${svc.name} is taken by a process we did not start; stop it or set ${setting} to a free port`,
        );
      }
    }
    await svc.preflight?.(ctx);
  }
  // The three do not depend on each other (the registry keeps its schemas in its own H2 file).
  const results = await Promise.all([ensure(ctx, kafka), ensure(ctx, mongo), ensure(ctx, registry)]);
  ctx.progress(`kafka ${results[0]}, mongo (${ctx.mongoServer}) ${results[1]}, registry ${results[2]}`);
  const env = { ...kafka.endpoint(ctx).env, ...registry.endpoint(ctx).env, ...mongo.endpoint(ctx).env };
  const lines = ['# written by `keyflow services up`; the environment overrides these', ''];
  for (const [key, value] of Object.entries(env)) lines.push(`${key}=${value}`);
  fs.writeFileSync(servicesEnvPath(ctx.stateDir), `${lines.join('\n')}\n`);
  return env;
}

/**
 * SIGTERM the process group, then SIGKILL after a grace period. With `watch`, the grace restarts with
 * every progress line the service logs (mongo-java-server compacting its store as it closes), up to
 * READY_MAX_MS; its lines are relayed.
 */
async function stopPid(
  pid: number,
  graceMs = 20_000,
  watch?: { ctx: StackContext; name: string },
): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig); // detached: the pid leads its own group (JVM and python children too)
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  const log = watch ? logFile(watch.ctx, watch.name) : undefined;
  let offset = log ? sizeOf(log) : 0;
  const quiet = new StartupWatch(graceMs, Date.now());
  const giveUp = Date.now() + READY_MAX_MS;
  signal('SIGTERM');
  while (isAlive(pid) && !quiet.expired(Date.now()) && Date.now() < giveUp) {
    await sleep(200);
    if (!log || !watch) continue;
    const read = readSince(log, offset);
    offset = read.offset;
    for (const line of quiet.observe(read.text, Date.now())) watch.ctx.progress(`${watch.name}: ${line}`);
  }
  if (isAlive(pid)) signal('SIGKILL');
  while (isAlive(pid)) await sleep(100);
}

/** Stops only what we started (by pid file), registry first, and waits until the ports are free. */
export async function down(ctx: StackContext): Promise<string[]> {
  const stopped: string[] = [];
  for (const svc of [registry, mongo, kafka]) {
    const pid = readPid(ctx, svc.name);
    if (pid === undefined) continue;
    if (isAlive(pid)) {
      ctx.progress(`stopping ${svc.name} (pid ${pid})`);
      await stopPid(pid, undefined, { ctx, name: svc.name });
      stopped.push(svc.name);
    }
    fs.rmSync(pidFile(ctx, svc.name), { force: true });
    fs.rmSync(labelFile(ctx, svc.name), { force: true });
    const deadline = Date.now() + 10_000;
    while ((await portOpen(portOf(ctx, svc))) && Date.now() < deadline) await sleep(200);
  }
  fs.rmSync(servicesEnvPath(ctx.stateDir), { force: true });
  return stopped;
}

export async function status(ctx: StackContext): Promise<ServiceStatus[]> {
  const out: ServiceStatus[] = [];
  for (const svc of [kafka, registry, mongo]) {
    const pid = readPid(ctx, svc.name);
    const alive = pid !== undefined && isAlive(pid);
    // Not the settings' answer for a running process: it may have been started with other settings, or
    // before labels were recorded.
    const label = alive ? (readLabel(ctx, svc.name) ?? 'version not recorded') : svc.label(ctx);
    out.push({
      name: svc.name,
      label,
      pid,
      alive,
      ready: alive && (await svc.ready(ctx)),
      port: portOf(ctx, svc),
      dataBytes: svc.dataDirs(ctx).reduce((sum, dir) => sum + dirBytes(dir), 0),
    });
  }
  return out;
}

/** The folder `reset` deletes: every service's data, nothing else of the state dir (logs, settings stay). */
export function dataRoot(ctx: StackContext): string {
  return path.join(ctx.stateDir, 'data');
}

/** Stops whatever of ours runs, then deletes the data folder, so the next `up` starts empty. */
export async function reset(ctx: StackContext): Promise<{ stopped: string[]; freedBytes: number }> {
  const stopped = await down(ctx);
  const freedBytes = dirBytes(dataRoot(ctx));
  fs.rmSync(dataRoot(ctx), { recursive: true, force: true });
  return { stopped, freedBytes };
}
