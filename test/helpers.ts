// Test resources against the real stack: every test gets fresh topic, group and database names,
// and everything it opens is registered here and closed after it (see STYLE.md, habit 8).
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel, type Admin, type Consumer } from 'kafkajs';
import { MongoClient, type Db } from 'mongodb';

export function env(name: 'KAFKA_BROKERS' | 'SCHEMA_REGISTRY_URL' | 'MONGO_URL'): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: integration tests run through jest's global setup`);
  return v;
}

/**
 * Per partition, the offset a kafkajs consumer has read past. A stage writes its outputs in Kafka
 * transactions: each ends in a commit marker, and an aborted one's records are skipped, so a
 * read_committed reader never receives the last offsets of a partition. kafkajs still reports the
 * batch that held them (even a batch of nothing but markers), so a reader waiting for a captured end
 * offset counts them here as well as its own messages.
 */
export function readPositions(consumer: Consumer): Map<number, number> {
  const next = new Map<number, number>();
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    const reached = Number(payload.lastOffset) + 1;
    if (reached > (next.get(payload.partition) ?? 0)) next.set(payload.partition, reached);
  });
  return next;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

type Closer = () => Promise<unknown>;
const closers: Closer[] = [];

/** Registers a cleanup to run after the current test file, last registered first. */
export function onCleanup(fn: Closer): void {
  closers.push(fn);
}

export async function cleanupAll(): Promise<void> {
  while (closers.length) {
    const fn = closers.pop()!;
    await fn().catch((err) => process.stderr.write(`cleanup failed: ${String(err)}\n`));
  }
}

export function kafkaClient(): Kafka {
  return new Kafka({
    clientId: uniqueName('test'),
    brokers: env('KAFKA_BROKERS').split(','),
    logLevel: logLevel.NOTHING,
  });
}

export async function adminClient(): Promise<Admin> {
  const admin = kafkaClient().admin();
  await admin.connect();
  onCleanup(() => admin.disconnect());
  return admin;
}

/** Creates a topic with a unique name and deletes it after the test file. */
export async function freshTopic(
  prefix: string,
  partitions = 3,
  configs: Record<string, string> = {},
): Promise<string> {
  const admin = await adminClient();
  const topic = uniqueName(prefix);
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic,
        numPartitions: partitions,
        replicationFactor: 1,
        configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })),
      },
    ],
  });
  onCleanup(() => admin.deleteTopics({ topics: [topic] }));
  return topic;
}

export function schemaRegistry(): SchemaRegistry {
  return new SchemaRegistry({ host: env('SCHEMA_REGISTRY_URL') });
}

/** A database of its own for this test file, dropped afterwards. */
export async function freshDb(prefix = 'kftest'): Promise<{ client: MongoClient; db: Db }> {
  const client = new MongoClient(env('MONGO_URL'), { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  const db = client.db(uniqueName(prefix).replace(/-/g, '_'));
  onCleanup(async () => {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  });
  return { client, db };
}

/** Polls `check` until it returns a value that is not undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** A TCP port free on 127.0.0.1 right now (for a server or service the test starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
