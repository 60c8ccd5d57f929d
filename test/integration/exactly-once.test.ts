// Exactly-once against the real broker: a transaction that fails part-way shows nothing to a
// read_committed reader; of two producers for one (stage, partition) transactional id the older is
// fenced and its records never show; a delivery begun before the member rejoined never commits; and a stage that drained a transactionally written topic reads
// lag 0 in the gauge the stalled-partition alert and /ops read, not 1 per commit marker.
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import type { Db } from 'mongodb';
import { Partitioners, type Kafka } from 'kafkajs';
import { RUNNER_DEFAULTS } from '../../src/consumers/options';
import { StageRunner } from '../../src/consumers/stage-runner';
import { Instrumentation } from '../../src/instrumentation';
import { kafkajsClient, kafkajsOffsets } from '../../src/kafka/kafkajs-client';
import { PartitionTransactions } from '../../src/kafka/kafkajs-transactions';
import { createLogger } from '../../src/logger';
import { LagCollector } from '../../src/monitoring/lag';
import type { WireRecord } from '../../src/producers/types';
import type { ActionStageSpec } from '../../src/topology/types';
import { FakeLetters } from '../unit/fakes/runner';
import { cleanupAll, eventually, freshTopic, kafkaClient, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

/** The group's committed offsets through the adapter's reader, closed after the test file. */
function reader(kafka: Kafka) {
  const offsets = kafkajsOffsets(kafka);
  onCleanup(() => offsets.close());
  return offsets;
}

const rec = (topic: string, key: string, value: string | Buffer): WireRecord => ({
  topic,
  key,
  value: Buffer.isBuffer(value) ? value : Buffer.from(value),
  headers: {},
  eventId: randomUUID(),
});

/** Every value on `topic` a reader of the given isolation sees, once it has read to the end. */
async function readAll(kafka: Kafka, topic: string, readUncommitted: boolean): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  // Nothing is left open here, so the last stable offset (what fetchTopicOffsets reports) is the end.
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  await admin.disconnect();
  const seen: string[] = [];
  const positions = new Map<number, bigint>();
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), readUncommitted, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) seen.push(m.value?.toString() ?? '');
      positions.set(batch.partition, BigInt(batch.lastOffset()) + 1n);
    },
  });
  const done = () => [...ends].every(([p, end]) => end === 0n || (positions.get(p) ?? 0n) >= end);
  await eventually(async () => (done() ? true : undefined), 20_000, `${topic} read to its end`);
  await consumer.disconnect();
  return seen;
}

function transactions(kafka: Kafka, groupId: string, seeks: string[] = []) {
  const t = new PartitionTransactions(kafka, {
    groupId,
    idPrefix: `${groupId}.tx.`,
    seek: (topic, partition, offset) => seeks.push(`${topic}/${partition}@${offset}`),
  });
  onCleanup(() => t.close());
  return t;
}

test('a transaction refused part-way is aborted whole: its accepted records never show to read_committed', async () => {
  const kafka = kafkaClient();
  const input = await freshTopic('eos-in', 1);
  const out = await freshTopic('eos-out', 1);
  const small = await freshTopic('eos-small', 1, { 'max.message.bytes': '2048' });
  const groupId = uniqueName('eos-stage');
  const t = transactions(kafka, groupId);
  const delivery = t.begin(0n);
  expect(await t.prepare(input, 0, delivery)).toEqual({ ok: true });

  // The record to `out` is appended inside the transaction before the broker refuses the other.
  await expect(
    t.transact(input, 0, [rec(out, 'k', 'accepted'), rec(small, 'k', Buffer.alloc(8192))], '1', delivery),
  ).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
  // The next transaction opens a new producer and commits; the aborted one stays invisible.
  await t.transact(input, 0, [rec(out, 'k', 'committed')], '2', delivery);

  expect(await readAll(kafka, out, false)).toEqual(['committed']);
  // A read_uncommitted reader does see the aborted record: it was written, then aborted.
  expect(await readAll(kafka, out, true)).toEqual(['accepted', 'committed']);
  const committed = await reader(kafka).committed(groupId, input);
  expect(committed.get(0)).toBe(2n);
});

test('two owners of one (stage, partition): the older is fenced and its records never show', async () => {
  const kafka = kafkaClient();
  const input = await freshTopic('eos-in', 1);
  const out = await freshTopic('eos-out', 1);
  const groupId = uniqueName('eos-stage');
  const zombie = transactions(kafka, groupId);
  const zombieDelivery = zombie.begin(0n);
  expect(await zombie.prepare(input, 0, zombieDelivery)).toEqual({ ok: true });
  await zombie.transact(input, 0, [rec(out, 'k', 'zombie-before')], '5', zombieDelivery);

  // The new owner fetched from 0 before the zombie's commit: opening fences the zombie, and the
  // committed offset read after that says its delivery overlaps; the consumer is moved to 5.
  const seeks: string[] = [];
  const owner = transactions(kafka, groupId, seeks);
  const ownerDelivery = owner.begin(0n);
  expect(await owner.prepare(input, 0, ownerDelivery)).toEqual({ ok: false, committed: 5n });
  expect(seeks).toEqual([`${input}/0@5`]);

  await expect(
    zombie.transact(input, 0, [rec(out, 'k', 'zombie-after')], '9', zombieDelivery),
  ).rejects.toMatchObject({
    code: 'PARTITION_FENCED',
  });
  // The redelivery from 5 is a delivery of its own.
  const redelivery = owner.begin(5n);
  expect(await owner.prepare(input, 0, redelivery)).toEqual({ ok: true });
  await owner.transact(input, 0, [rec(out, 'k', 'owner')], '7', redelivery);

  expect(await readAll(kafka, out, false)).toEqual(['zombie-before', 'owner']);
  expect((await reader(kafka).committed(groupId, input)).get(0)).toBe(7n);
});

test('a delivery begun before the member rejoined its group never commits, though the partition came back to it', async () => {
  // A member cut off from Kafka rejoins while its old delivery still runs; the partition had another
  // owner meanwhile, who committed the same input. The old delivery must not commit it again.
  const kafka = kafkaClient();
  const input = await freshTopic('eos-in', 1);
  const out = await freshTopic('eos-out', 1);
  const groupId = uniqueName('eos-stage');
  const member = transactions(kafka, groupId);
  const old = member.begin(0n);
  expect(await member.prepare(input, 0, old)).toEqual({ ok: true });

  const other = transactions(kafka, groupId);
  const theirs = other.begin(0n);
  expect(await other.prepare(input, 0, theirs)).toEqual({ ok: true });
  await other.transact(input, 0, [rec(out, 'k', 'other')], '4', theirs);

  // The rejoin: what the member knew of its partitions is dropped.
  await member.reset();
  await expect(member.transact(input, 0, [rec(out, 'k', 'stale')], '4', old)).rejects.toMatchObject({
    code: 'PARTITION_FENCED',
  });
  // Its delivery under the new join starts where the group's offset stands.
  const fresh = member.begin(4n);
  expect(await member.prepare(input, 0, fresh)).toEqual({ ok: true });
  await member.transact(input, 0, [rec(out, 'k', 'after')], '6', fresh);

  expect(await readAll(kafka, out, false)).toEqual(['other', 'after']);
  expect((await reader(kafka).committed(groupId, input)).get(0)).toBe(6n);
});

test('a delivery begun before a rejoin is refused even when no one else committed meanwhile', async () => {
  const kafka = kafkaClient();
  const input = await freshTopic('eos-in', 1);
  const out = await freshTopic('eos-out', 1);
  const member = transactions(kafka, uniqueName('eos-stage'));
  const old = member.begin(0n);
  expect(await member.prepare(input, 0, old)).toEqual({ ok: true });
  await member.reset();
  await expect(member.transact(input, 0, [rec(out, 'k', 'stale')], '1', old)).rejects.toMatchObject({
    code: 'PARTITION_FENCED',
  });
  expect(await readAll(kafka, out, false)).toEqual([]);
});

test('a stage draining a transactionally written topic commits past its markers: lag reads 0', async () => {
  const kafka = kafkaClient();
  const input = await freshTopic('eos-in', 2);
  const out = await freshTopic('eos-out', 2);
  // Upstream writes in transactions: each adds a commit marker after its records.
  const upstream = kafka.producer({
    transactionalId: uniqueName('upstream'),
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await upstream.connect();
  onCleanup(() => upstream.disconnect());
  for (let i = 0; i < 4; i++) {
    const tx = await upstream.transaction();
    await tx.send({
      topic: input,
      messages: [0, 1, 2].map((j) => ({ key: `k${j}`, value: JSON.stringify({ n: i * 3 + j }) })),
    });
    await tx.commit();
  }

  const spec: ActionStageSpec = {
    kind: 'action',
    name: uniqueName('eos-count'),
    inputs: [input],
    outputs: [out],
    handler: {
      read: async () => null,
      decide: (e) => ({ plan: {}, emit: [{ topic: out, key: e.key, value: e.value }] }),
      write: async () => 'applied',
    },
  };
  const groupId = uniqueName('eos-group');
  const instrumentation = new Instrumentation();
  const runner = new StageRunner(
    spec,
    {
      member: (o, e) => kafkajsClient(kafka).member(o, e),
      groupId,
      decoder: { decode: async (_t, bytes) => ({ value: JSON.parse(bytes.toString()) as unknown }) },
      producer: {
        prepare: async (input, cause, index = 0) => ({
          topic: input.topic,
          key: input.key,
          value: Buffer.from(JSON.stringify(input.value)),
          headers: {},
          eventId: `${cause?.eventId ?? 'x'}:${index}`,
        }),
        sendNow: () => Promise.reject(new Error('exactly-once sends inside transactions only')),
      },
      // No event here fails: the dead-letter store is never written, so it need not be MongoDB.
      letters: new FakeLetters(),
      db: {} as Db,
      log: createLogger('silent'),
      instrumentation,
    },
    {
      ...RUNNER_DEFAULTS,
      instanceId: 'eos-test',
      deliveryGuarantee: 'exactly-once',
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1_000,
      fetchWaitMs: 100,
      flushIntervalMs: 100,
    },
  );
  await runner.start();
  onCleanup(() => runner.stop());

  const offsets = reader(kafka);
  const registry = new Registry();
  const lag = new LagCollector({
    offsets,
    groups: [{ group: groupId, stage: spec.name, topics: [input] }],
    registry,
    log: createLogger('silent'),
    intervalMs: 60_000,
    stallAfterMs: 60_000,
  });
  const lagOf = async () => {
    await lag.poll();
    const metric = await registry.getSingleMetric('kafka_consumergroup_lag')!.get();
    return metric.values.map((v) => [v.labels.partition, v.value]);
  };
  const drained = await eventually(
    async () => {
      const values = await lagOf();
      return values.length === 2 && values.every(([, v]) => v === 0) ? values : undefined;
    },
    30_000,
    'lag 0 on both partitions',
  );
  expect(drained).toHaveLength(2);
  // Every partition's committed offset is its end, past the last marker (the log ends on a marker).
  const bounds = await offsets.bounds(input);
  const committed = await offsets.committed(groupId, input);
  for (const [p, b] of bounds) if (b.high > 0n) expect(committed.get(p)).toBe(b.high);
  // An aborted upstream transaction leaves a fetch of aborted records and a marker only, which never
  // reaches the stage: the member commits past it all the same.
  const aborted = await upstream.transaction();
  await aborted.send({ topic: input, messages: [{ key: 'k0', value: JSON.stringify({ n: 99 }) }] });
  await aborted.abort();
  await eventually(
    async () => ((await lagOf()).every(([, v]) => v === 0) ? true : undefined),
    30_000,
    'lag 0 again after an aborted upstream transaction',
  );
  const after = await offsets.committed(groupId, input);
  for (const [p, b] of await offsets.bounds(input)) if (b.high > 0n) expect(after.get(p)).toBe(b.high);

  // The stage's output went out in its transactions: all twelve, each once.
  const seen = (await readAll(kafka, out, false)).map((v) => (JSON.parse(v) as { n: number }).n);
  expect(seen.sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
});
