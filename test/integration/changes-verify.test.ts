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

const totals = (count: number, amount = count * 10): ConversionTotals => ({
  count,
  amount,
  firstAt: 1_700_000_000_000,
  lastAt: 1_700_000_000_000 + count,
});

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
  const verify = () => verifyTopic({ kafka, registryUrl: env('SCHEMA_REGISTRY_URL'), db, topic });

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
    verifyTopic({ kafka: kafkaClient(), registryUrl: env('SCHEMA_REGISTRY_URL'), db, topic }),
  ).rejects.toMatchObject({ code: 'TOPIC_UNKNOWN', message: expect.stringContaining(topic) });
});

test('a transactional topic: an aborted copy is not read, and commit markers do not leave a partition short', async () => {
  const topic = `${uniqueName('kfverify')}.${CHANGES_TOPIC}`;
  const admin = await adminClient();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: 2, replicationFactor: 1 }],
  });
  onCleanup(() => admin.deleteTopics({ topics: [topic] }));
  const codec = new RegistryCodec({ url: env('SCHEMA_REGISTRY_URL') });
  await codec.registerAll([{ name: topic, value: conversionChangeSchema } as unknown as TopicSpec]);
  const { db } = await freshDb('kfverify');
  const row = { tenantId: 't1', leadId: 'lead-a', conversionType: 'SALE' };
  await rowsOf(db).insertOne({ _id: rowIdOf(row), ...row, ...totals(2), updatedAt: 0 });
  const record = async (eventId: string, before: ConversionTotals | null, after: ConversionTotals) => ({
    key: row.leadId,
    value: await codec.encode(topic, {
      ...row,
      eventId,
      occurredAt: after.lastAt,
      outOfOrder: false,
      before,
      after,
    }),
    headers: { 'keyflow-event-id': eventId },
  });
  const producer = kafkaClient().producer({
    transactionalId: uniqueName('kfverify-tx'),
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  onCleanup(() => producer.disconnect());
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
    registryUrl: env('SCHEMA_REGISTRY_URL'),
    db,
    topic,
    idleMs: 60_000,
  });
  expect(shortOf).toEqual([]);
  expect(report).toMatchObject({ changes: 2, distinctEvents: 2, duplicates: 0, extra: 0, missing: 0 });
  expect(hasProblems(report)).toBe(false);
});
