// Runs a topology in a real Processor against the real stack, with a database and topic prefix of
// its own, and produces test events through the real registry. Everything is stopped after the file.
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient, type Db } from 'mongodb';
import { loadConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { KeyedProducer } from '../../src/producers/producer';
import { Processor, type ProcessorOptions } from '../../src/runtime/processor';
import { RegistryCodec } from '../../src/schemas/codec';
import type { Topology } from '../../src/topology/types';
import { env, onCleanup, uniqueName } from '../helpers';

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
  const producer = new KeyedProducer(kafka, codec);
  await producer.connect();
  onCleanup(() => producer.close());
  return producer;
}

export function prefix(name: string): string {
  return uniqueName(`scn-${name}`);
}
