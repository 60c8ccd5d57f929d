// `changes verify` against the real broker, registry and database: a clean change history written
// with Keyflow's producer passes; a re-emitted copy and a stale out-of-order change added after it
// fail, each named by its row.
import { verifyTopic } from '../../src/changes/kafkajs-read';
import { kafkajsClient } from '../../src/kafka/kafkajs-client';
import { hasProblems, reportText } from '../../src/changes/verify';
import { rowIdOf } from '../../src/conversions/reducer';
import { CHANGES_TOPIC, conversionChangeSchema, type ConversionTotals } from '../../src/conversions/schemas';
import { rowsOf } from '../../src/conversions/store';
import { KeyedProducer } from '../../src/producers/producer';
import { RegistryCodec } from '../../src/schemas/codec';
import type { TopicSpec } from '../../src/topology/types';
import { adminClient, cleanupAll, env, freshDb, kafkaClient, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

const brokers = env('KAFKA_BROKERS').split(',');

const totals = (count: number, amount = count * 10): ConversionTotals => ({
  count,
  amount,
  firstAt: 1_700_000_000_000,
  lastAt: 1_700_000_000_000 + count,
});

const ROW = { tenantId: 't1', leadId: 'lead-a', conversionType: 'SALE' };

/**
 * A fresh change topic with its schema, a fresh database whose one row counts
 * `count` events, and the row's change records encoded for the topic.
 */
async function oneRowTopic(partitions: number, count: number) {
  const topic = `${uniqueName('kfverify')}.${CHANGES_TOPIC}`;
  const admin = await adminClient();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
  });
  onCleanup(() => admin.deleteTopics({ topics: [topic] }));
  const codec = new RegistryCodec({ url: env('SCHEMA_REGISTRY_URL') });
  await codec.registerAll([{ name: topic, value: conversionChangeSchema } as unknown as TopicSpec]);
  const { db } = await freshDb('kfverify');
  await rowsOf(db).insertOne({ _id: rowIdOf(ROW), ...ROW, ...totals(count), updatedAt: 0 });
  const record = async (eventId: string, before: ConversionTotals | null, after: ConversionTotals) => ({
    key: ROW.leadId,
    value: await codec.encode(topic, {
      ...ROW,
      eventId,
      occurredAt: after.lastAt,
      outOfOrder: false,
      before,
      after,
    }),
    headers: { 'keyflow-event-id': eventId },
  });
  return { topic, db, record };
}

/** A connected kafkajs transactional producer, disconnected at cleanup. */
async function txProducer(name: string) {
  const producer = kafkaClient().producer({
    transactionalId: uniqueName(name),
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  onCleanup(() => producer.disconnect());
  return producer;
}

test('a clean history passes; a re-emitted copy and a stale change fail, named by row', async () => {
  const topic = `${uniqueName('kfverify')}.${CHANGES_TOPIC}`;
  const admin = await adminClient();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
  });
  onCleanup(() => admin.deleteTopics({ topics: [topic] }));
  const codec = new RegistryCodec({ url: env('SCHEMA_REGISTRY_URL') });
  await codec.registerAll([{ name: topic, value: conversionChangeSchema } as unknown as TopicSpec]);
  const kafka = kafkaClient();
  const producer = new KeyedProducer(kafkajsClient(kafka), codec);
  onCleanup(() => producer.close());
  const { db } = await freshDb('kfverify');

  const rowA = { tenantId: 't1', leadId: 'lead-a', conversionType: 'SALE' };
  const rowB = { tenantId: 't1', leadId: 'lead-b', conversionType: 'SALE' };
  await rowsOf(db).insertMany([
    { _id: rowIdOf(rowA), ...rowA, ...totals(2), updatedAt: 0 },
    { _id: rowIdOf(rowB), ...rowB, ...totals(1), updatedAt: 0 },
  ]);
  const change = (
    row: typeof rowA,
    eventId: string,
    before: ConversionTotals | null,
    after: ConversionTotals,
  ) => ({
    topic,
    key: row.leadId,
    eventId,
    value: { ...row, eventId, occurredAt: after.lastAt, outOfOrder: false, before, after },
  });
  await producer.publish([
    change(rowA, 'e1', null, totals(1)),
    change(rowB, 'f1', null, totals(1)),
    change(rowA, 'e2', totals(1), totals(2)),
  ]);
  const verify = () => verifyTopic({ kafka, brokers, registryUrl: env('SCHEMA_REGISTRY_URL'), db, topic });

  const clean = await verify();
  expect(clean.shortOf).toEqual([]);
  expect(clean.report).toMatchObject({ changes: 3, distinctEvents: 3, rows: 2, missing: 0 });
  expect(hasProblems(clean.report)).toBe(false);

  // Row A's first change re-emitted after its second (what a redelivered batch does today), and a
  // change of row B from another event that does not follow its history.
  await producer.publish([change(rowA, 'e1', null, totals(1)), change(rowB, 'f0', null, totals(1, 5))]);
  const broken = await verify();
  const a = rowIdOf(rowA);
  const b = rowIdOf(rowB);
  expect(broken.report).toMatchObject({
    changes: 5,
    distinctEvents: 4,
    duplicates: 1,
    gaps: 1,
    lastDiffers: 2,
  });
  expect(broken.report.examples.duplicates).toEqual([a]);
  expect(broken.report.examples.gaps).toEqual([b]);
  expect(broken.report.examples.lastDiffers.sort()).toEqual([a, b].sort());
  expect(hasProblems(broken.report)).toBe(true);
  const text = reportText(topic, broken.report);
  expect(text).toContain(a);
  expect(text).toContain(b);
  expect(text).toMatch(/^FAIL/m);
});

test('a change topic the brokers do not have is refused by name, not read as empty', async () => {
  const { db } = await freshDb('kfverify');
  const topic = `${uniqueName('kfverify')}.${CHANGES_TOPIC}`;
  await expect(
    verifyTopic({ kafka: kafkaClient(), brokers, registryUrl: env('SCHEMA_REGISTRY_URL'), db, topic }),
  ).rejects.toMatchObject({ code: 'TOPIC_UNKNOWN', message: expect.stringContaining(topic) });
});

test('a transactional topic: an aborted copy is not read, and commit markers do not leave a partition short', async () => {
  const { topic, db, record } = await oneRowTopic(2, 2);
  const producer = await txProducer('kfverify-tx');
  const inTransaction = async (records: Awaited<ReturnType<typeof record>>[], commit: boolean) => {
    const tx = await producer.transaction();
    await tx.send({ topic, messages: records });
    await (commit ? tx.commit() : tx.abort());
  };
  await inTransaction([await record('e1', null, totals(1))], true);
  // What a crashed attempt leaves: its copy of e1 and its e2, aborted. A read_uncommitted reader would
  // see a duplicate here; read_committed must not.
  await inTransaction([await record('e1', null, totals(1)), await record('e2', totals(1), totals(2))], false);
  await inTransaction([await record('e2', totals(1), totals(2))], true);

  const { report, shortOf } = await verifyTopic({
    kafka: kafkaClient(),
    brokers,
    registryUrl: env('SCHEMA_REGISTRY_URL'),
    db,
    topic,
    idleMs: 60_000,
  });
  expect(shortOf).toEqual([]);
  expect(report).toMatchObject({ changes: 2, distinctEvents: 2, duplicates: 0, extra: 0, missing: 0 });
  expect(hasProblems(report)).toBe(false);
});

test('a transaction a dead producer left open: committed changes behind it are waited for, not called missing', async () => {
  const { topic, db, record } = await oneRowTopic(1, 1);
  // The killed member: its transaction holds a copy of e1 and stays open (its timeout, 60 s, is far off).
  const dead = await txProducer('kfverify-dead');
  const open = await dead.transaction();
  await open.send({ topic, messages: [await record('e1', null, totals(1))] });
  // Its successor: the change, committed after the open transaction's first record.
  const next = await txProducer('kfverify-next');
  const tx = await next.transaction();
  await tx.send({ topic, messages: [await record('e1', null, totals(1))] });
  await tx.commit();
  const verify = (idleMs?: number) =>
    verifyTopic({
      kafka: kafkaClient(),
      brokers,
      registryUrl: env('SCHEMA_REGISTRY_URL'),
      db,
      topic,
      ...(idleMs ? { idleMs } : {}),
    });

  // While it is open nothing past it can be read: the partition is named short, with the reason, and
  // never passed as read to its end (the change would then be "missing" from a faithful topic).
  const held = await verify(2_000);
  expect(held.shortOf).toEqual([
    expect.stringMatching(
      /^.+:0 read to 0 of 3 \(a transaction is still open: the last stable offset is 0\)$/,
    ),
  ]);
  expect(held.report).toMatchObject({ changes: 0, rowsWithoutChange: 1 });
  expect(held.heldAtStart).toEqual([`${topic}:0@0`]);

  // Once it ends (here aborted, as the coordinator does when it times out) the read gets the change.
  const reading = verify();
  await open.abort();
  const settled = await reading;
  expect(settled.shortOf).toEqual([]);
  expect(settled.report).toMatchObject({ changes: 1, distinctEvents: 1, duplicates: 0, missing: 0 });
  expect(hasProblems(settled.report)).toBe(false);
});
