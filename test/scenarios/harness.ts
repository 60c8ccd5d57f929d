// Runs a topology in a real Processor against the real stack, with a database and topic prefix of
// its own, and produces test events through the real registry. Everything is stopped after the file.
import { Kafka, logLevel } from 'kafkajs';
import { spawn, type ChildProcess } from 'node:child_process';
import { MongoClient, type Db } from 'mongodb';
import { loadConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { KeyedProducer } from '../../src/producers/producer';
import { Processor, type ProcessorOptions } from '../../src/runtime/processor';
import { RegistryCodec } from '../../src/schemas/codec';
import { groupIdFor } from '../../src/topology/names';
import type { Topology } from '../../src/topology/types';
import { createAdminServer, sha256Hex } from '../../src/api/admin';
import { createServer } from '../../src/api/server';
import type { batchesFlow } from '../../src/batches';
import { opsRoutes } from '../../src/monitoring/ops-routes';
import { env, eventually, onCleanup, uniqueName } from '../helpers';
import { counterTopology, type CounterEvent } from './fixtures/counter';
import { kafkajsClient } from '../../src/kafka/kafkajs-client';

/** The named settings of this process's environment that are set. */
function passedThrough(names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((n) => (process.env[n] ? [[n, process.env[n]!]] : [])));
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    KAFKA_BROKERS: env('KAFKA_BROKERS'),
    SCHEMA_REGISTRY_URL: env('SCHEMA_REGISTRY_URL'),
    MONGO_URL: env('MONGO_URL'),
    MONGO_DB: uniqueName('kfscn').replace(/-/g, '_'),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
    KEYFLOW_RETRY_BASE_MS: '20',
    KEYFLOW_RETRY_MAX_MS: '200',
    KEYFLOW_SESSION_TIMEOUT_MS: '10000',
    KEYFLOW_HEARTBEAT_INTERVAL_MS: '1000',
    // The processors run in the mode and on the client these settings name, when set (exactly-once on
    // kafkajs otherwise): `KEYFLOW_DELIVERY_GUARANTEE=at-least-once npm test` covers the other mode.
    ...passedThrough(['KEYFLOW_DELIVERY_GUARANTEE', 'KEYFLOW_KAFKA_CLIENT', 'KEYFLOW_KAFKA_GROUP_PROTOCOL']),
    ...overrides,
  });
}

export async function runProcessor(
  config: Config,
  topology: Topology,
  extra: Partial<ProcessorOptions> = {},
): Promise<Processor> {
  const processor = new Processor({ config, topology, log: createLogger(config.logLevel), ...extra });
  onCleanup(() => processor.stop());
  await processor.start();
  return processor;
}

/** A client of the test's own on the named database, dropped and closed after the file. */
export async function freshDbNamed(name: string): Promise<{ db: Db }> {
  const client = new MongoClient(env('MONGO_URL'));
  await client.connect();
  const db = client.db(name);
  onCleanup(async () => {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  });
  return { db };
}

/**
 * The batches flow in a real processor (only `stages` of it when named), a client on its database that
 * is dropped after the file, and the flow's HTTP routes on a port of their own.
 */
export async function startBatchesRig(
  config: Config,
  flow: ReturnType<typeof batchesFlow>,
  stages?: string[],
): Promise<{ processor: Processor; db: Db; port: number; base: string }> {
  const processor = await runProcessor(
    config,
    { topics: flow.topics, stages: flow.stages },
    { indexes: flow.indexes, ...(stages ? { stages } : {}) },
  );
  const { db } = await freshDbNamed(config.mongoDb);
  const server = createServer({
    log: createLogger('silent'),
    registry: processor.metrics,
    health: processor.health,
    routes: [flow.routes!(processor.context)],
  });
  onCleanup(() => server.close());
  const port = await server.listen(0, '127.0.0.1');
  return { processor, db, port, base: `http://127.0.0.1:${port}` };
}

/** Drops the test's database once the file is done. */
export function dropAfter(db: () => Db): void {
  onCleanup(async () => {
    await db()
      .dropDatabase()
      .catch(() => undefined);
  });
}

/** A producer of test events through the real registry (schemas must be registered already). */
export async function testProducer(config: Config, topology: Topology): Promise<KeyedProducer> {
  const codec = new RegistryCodec({ url: config.schemaRegistryUrl });
  await codec.registerAll(topology.topics);
  const kafka = new Kafka({
    clientId: uniqueName('scn-producer'),
    brokers: config.kafkaBrokers,
    logLevel: logLevel.NOTHING,
  });
  const producer = new KeyedProducer(kafkajsClient(kafka), codec);
  await producer.connect();
  onCleanup(() => producer.close());
  return producer;
}

export function prefix(name: string): string {
  return uniqueName(`scn-${name}`);
}

/** Settings every child-process instance gets: quick retries and a short session, quiet logs. */
const INSTANCE_ENV = {
  KEYFLOW_RETRY_BASE_MS: '20',
  KEYFLOW_RETRY_MAX_MS: '200',
  KEYFLOW_SESSION_TIMEOUT_MS: '10000',
  KEYFLOW_HEARTBEAT_INTERVAL_MS: '1000',
  LOG_LEVEL: 'error',
};

/**
 * Starts a fixture script (which prints READY once its processor runs) as a real child process, for
 * scenarios that SIGKILL or stop instances. Killed after the test file if still running.
 */
export function spawnInstance(script: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...INSTANCE_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      if (String(d).includes('READY')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}: ${err.slice(-2000)}`)));
  });
}

export function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', () => r()));
}

export interface OpsRig {
  processor: Processor;
  /** Base URL of the public server: /metrics, /healthz, /readyz. */
  base: string;
  /** Base URL of the admin server with the ops routes of the running processor. */
  admin: string;
  /** The admin token, and the header that carries it. */
  token: string;
  auth: { authorization: string };
  stage: string;
  /** The stage's consumer group id (the application id's prefix, when set). */
  group: string;
  input: string;
  send(events: CounterEvent[]): Promise<void>;
}

/**
 * The counter stage (2 partitions) with a fast lag poll and a short stall window, its probes and metrics
 * on a public port and the ops routes behind an admin token on an admin port; resolves once joined.
 */
export async function startOpsRig(
  name: string,
  stallAfterMs: number,
  overrides: Record<string, string> = {},
): Promise<OpsRig> {
  const p = prefix(name);
  const topology = counterTopology(p, { partitions: 2 });
  const config = testConfig({
    KEYFLOW_LAG_INTERVAL_MS: '250',
    KEYFLOW_STALL_AFTER_MS: String(stallAfterMs),
    ...overrides,
  });
  const producer = await testProducer(config, topology);
  const processor = await runProcessor(config, topology);
  dropAfter(() => processor.context.db);
  const server = createServer({
    log: createLogger('silent'),
    registry: processor.metrics,
    health: processor.health,
  });
  onCleanup(() => server.close());
  const base = `http://127.0.0.1:${await server.listen(0, '127.0.0.1')}`;
  const token = `${uniqueName('admin')}-0123456789abcdef0123456789`;
  const adminServer = createAdminServer({
    log: createLogger('silent'),
    registry: processor.metrics,
    health: processor.health,
    db: processor.context.db,
    tokenHash: sha256Hex(token),
    routes: [opsRoutes(processor.context)],
  });
  onCleanup(() => adminServer.close());
  const admin = `http://127.0.0.1:${await adminServer.listen(0, '127.0.0.1')}`;
  const input = `${p}.in`;
  await eventually(
    async () => (processor.runners.every((r) => r.ready) ? true : undefined),
    30_000,
    'group join',
  );
  return {
    processor,
    base,
    admin,
    token,
    auth: { authorization: `Bearer ${token}` },
    stage: `${p}.counter`,
    group: groupIdFor(config.applicationId, `${p}.counter`),
    input,
    send: async (events) => {
      await producer.publish(events.map((e) => ({ topic: input, key: e.id, value: e, eventId: e.eventId })));
    },
  };
}
