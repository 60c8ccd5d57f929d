// Scenarios of the stage runner against the real broker, registry and Mongo-protocol server:
// per-key order under key-lane concurrency, retries, dead letters, parking, poison bytes, provenance.
import { Partitioners } from 'kafkajs';
import type { Db } from 'mongodb';
import { deadLetters, listLetters } from '../../src/state/dead-letters';
import { redrive } from '../../src/consumers/redrive';
import { HEADERS } from '../../src/producers/headers';
import type { KeyedProducer } from '../../src/producers/producer';
import type { Processor } from '../../src/runtime/processor';
import { byEntity, PROVENANCE_COLLECTION, type ProvenanceRecord } from '../../src/state/provenance';
import { groupIdFor } from '../../src/topology/names';
import type { Topology } from '../../src/topology/types';
import { adminClient, cleanupAll, eventually, kafkaClient, onCleanup, uniqueName } from '../helpers';
import {
  COUNTERS,
  counterEvent,
  counterTopology,
  type CounterDoc,
  type CounterEvent,
} from './fixtures/counter';
import { dropAfter, freshDbNamed, prefix, runProcessor, testConfig, testProducer } from './harness';

afterAll(cleanupAll);

interface Running {
  topology: Topology;
  processor: Processor;
  producer: KeyedProducer;
  db: Db;
  input: string;
  stage: string;
  /** The stage's consumer group id. */
  group: string;
}

async function start(name: string, overrides: Record<string, string> = {}): Promise<Running> {
  const p = prefix(name);
  const topology = counterTopology(p);
  const config = testConfig(overrides);
  const producer = await testProducer(config, topology);
  const processor = await runProcessor(config, topology);
  const db = processor.context.db;
  dropAfter(() => db);
  const stage = `${p}.counter`;
  const group = groupIdFor(config.applicationId, stage);
  return { topology, processor, producer, db, input: `${p}.in`, stage, group };
}

async function send(r: Running, events: CounterEvent[]): Promise<void> {
  await r.producer.publish(events.map((e) => ({ topic: r.input, key: e.id, value: e, eventId: e.eventId })));
}

async function counters(db: Db): Promise<Map<string, CounterDoc>> {
  const docs = await db.collection<CounterDoc>(COUNTERS).find().toArray();
  return new Map(docs.map((d) => [d._id, d]));
}

async function countsReach(
  db: Db,
  expected: Record<string, number>,
  timeoutMs = 60_000,
): Promise<Map<string, CounterDoc>> {
  return eventually(
    async () => {
      const got = await counters(db);
      const ok = Object.entries(expected).every(([k, n]) => (got.get(k)?.count ?? 0) >= n);
      return ok ? got : undefined;
    },
    timeoutMs,
    `counts ${JSON.stringify(expected)}`,
  );
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

const partitioner = Partitioners.DefaultPartitioner();
/** The partition the keyed producer (kafkajs' default partitioner) sends `key` to on the counter's input. */
function partitionOf(key: string, partitions = 3): number {
  const partitionMetadata = range(partitions).map((partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
  return partitioner({ topic: 'counter-input', partitionMetadata, message: { key, value: null } });
}
/** The first of `stem`1, `stem`2, … that lands on the same partition as `key`. */
function keyBeside(key: string, stem: string): string {
  for (let i = 1; ; i++) if (partitionOf(`${stem}${i}`) === partitionOf(key)) return `${stem}${i}`;
}

/** The partition each of `eventIds` was read from, from their provenance records. */
async function partitionsRead(db: Db, eventIds: string[]): Promise<number[]> {
  const rows = await eventually(async () => {
    const x = await db
      .collection<ProvenanceRecord>(PROVENANCE_COLLECTION)
      .find({ eventId: { $in: eventIds } })
      .toArray();
    return eventIds.every((id) => x.some((r) => r.eventId === id)) ? x : undefined;
  });
  return eventIds.map((id) => rows.find((r) => r.eventId === id)!.partition);
}

test('per key, events apply strictly in order while slow keys run beside fast ones', async () => {
  const r = await start('order', { KEYFLOW_KEY_LANES: '4' });
  const keys = range(8).map((i) => `k${i}`);
  const events: CounterEvent[] = [];
  // Delays fall with seq: two events of one key running at once would finish out of order.
  for (const seq of range(15)) {
    for (const k of keys) {
      events.push(counterEvent(k, seq, { delayMs: (15 - seq) * (k === 'k0' ? 8 : 1) }));
    }
  }
  await send(r, events);
  const got = await countsReach(r.db, Object.fromEntries(keys.map((k) => [k, 15])));
  for (const k of keys) {
    expect(got.get(k)!.seqs).toEqual(range(15));
    expect(got.get(k)!.count).toBe(15);
  }
  // The slow key (960 ms in all) finished after every fast key, so it did not hold them back.
  const slowDone = got.get('k0')!.lastAt;
  for (const k of keys.slice(1)) expect(got.get(k)!.lastAt).toBeLessThan(slowDone);
});

test('a retriable failure is retried with backoff and then succeeds, once', async () => {
  const r = await start('retry');
  await send(r, [counterEvent('a', 0, { failTimes: 2 }), counterEvent('a', 1)]);
  const got = await countsReach(r.db, { a: 2 });
  expect(got.get('a')!.seqs).toEqual([0, 1]);
  const trail = await eventually(async () => {
    const rows = await byEntity(r.db, 'a');
    return rows.length >= 2 && rows.every((x) => x.committedAt) ? rows : undefined;
  });
  const first = trail.find((x) => x.eventId === 'a#0')!;
  expect(first.attempt).toBe(3);
  expect(first.outcome).toBe('applied');
  expect(await deadLetters(r.db).countDocuments()).toBe(0);
});

test('exhausted retries send the event to the dead-letter topic with its reason, and later keys go on', async () => {
  const r = await start('exhaust', { KEYFLOW_MAX_ATTEMPTS: '3' });
  // `good` comes after `bad` on bad's own partition: the dead letter must not stall it.
  const good = keyBeside('bad', 'good');
  await send(r, [counterEvent('bad', 0, { failTimes: 99 }), counterEvent(good, 0)]);
  await countsReach(r.db, { [good]: 1 });
  const [badPartition, goodPartition] = await partitionsRead(r.db, ['bad#0', `${good}#0`]);
  expect(goodPartition).toBe(badPartition);
  // And the partition's committed offset moves past both.
  const admin = await adminClient();
  await eventually(
    async () => {
      const [t] = await admin.fetchOffsets({ groupId: r.group, topics: [r.input] });
      const ends = await admin.fetchTopicOffsets(r.input);
      const committed = t?.partitions.find((x) => x.partition === badPartition)?.offset;
      return committed === ends.find((x) => x.partition === badPartition)?.high ? true : undefined;
    },
    30_000,
    'the partition of the dead letter committed to its end',
  );
  const letter = await eventually(async () => (await listLetters(r.db, r.stage))[0]);
  expect(letter).toMatchObject({
    key: 'bad',
    eventId: 'bad#0',
    code: 'HANDLER_TRANSIENT',
    attempts: 3,
    status: 'parked',
  });

  // The dead-letter topic holds the original bytes and headers plus why and where from.
  const consumer = kafkaClient().consumer({ groupId: uniqueName('dlq-reader') });
  await consumer.connect();
  onCleanup(() => consumer.disconnect());
  await consumer.subscribe({ topic: `${r.stage}.dlq`, fromBeginning: true });
  const seen: { key: string; headers: Record<string, string>; value: Buffer }[] = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers = Object.fromEntries(
        Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
      );
      seen.push({ key: message.key!.toString(), headers, value: message.value! });
    },
  });
  const dlq = await eventually(async () => seen[0]);
  expect(dlq.key).toBe('bad');
  expect(dlq.headers[HEADERS.DLQ_CODE]).toBe('HANDLER_TRANSIENT');
  expect(dlq.headers[HEADERS.DLQ_ATTEMPTS]).toBe('3');
  expect(dlq.headers[HEADERS.DLQ_STAGE]).toBe(r.stage);
  expect(dlq.headers[HEADERS.DLQ_TOPIC]).toBe(r.input);
  expect(dlq.headers[HEADERS.DLQ_MESSAGE]).toMatch(/planned failure/);
  const decoded = await r.processor.context.codec.decode(r.input, dlq.value);
  expect(decoded.value).toMatchObject({ eventId: 'bad#0', id: 'bad' });
});

test('poison bytes go to the dead-letter topic at once while the partition goes on', async () => {
  const r = await start('poison', {});
  const raw = kafkaClient().producer();
  await raw.connect();
  onCleanup(() => raw.disconnect());
  // All on partition 0: garbage, a value with an unknown schema id, then a good event behind them.
  const unknownSchema = Buffer.from([0, 0x7f, 0xff, 0xff, 0x00, 0x01]);
  await raw.send({
    topic: r.input,
    messages: [
      { key: 'p1', value: Buffer.from('definitely not avro'), partition: 0 },
      { key: 'p2', value: unknownSchema, partition: 0 },
    ],
  });
  const good = counterEvent('p3', 0);
  const wire = await r.producer.prepare({ topic: r.input, key: 'p3', value: good, eventId: good.eventId });
  await raw.send({
    topic: r.input,
    messages: [{ key: 'p3', value: wire.value, headers: wire.headers, partition: 0 }],
  });

  await countsReach(r.db, { p3: 1 });
  const letters = await eventually(async () => {
    const l = await listLetters(r.db, r.stage);
    return l.length === 2 ? l : undefined;
  });
  expect(letters.map((l) => [l.key, l.code, l.attempts])).toEqual([
    ['p1', 'DECODE_FAILED', 1],
    ['p2', 'SCHEMA_UNKNOWN', 1],
  ]);
});

test('a key parked behind a dead letter is not overtaken by its later events; replay applies them in order', async () => {
  const r = await start('park', { KEYFLOW_MAX_ATTEMPTS: '2' });
  const healAt = Date.now() + 4_000;
  // y shares x's partition: the parked key must not hold the partition's other keys back.
  const y = keyBeside('x', 'y');
  await send(r, [
    counterEvent('x', 0),
    counterEvent('x', 1, { fatalUntil: healAt }),
    counterEvent('x', 2),
    counterEvent(y, 0),
    counterEvent('x', 3),
    counterEvent(y, 1),
  ]);
  await countsReach(r.db, { [y]: 2 });
  const [xPartition, yPartition] = await partitionsRead(r.db, ['x#0', `${y}#1`]);
  expect(yPartition).toBe(xPartition);
  const parked = await eventually(async () => {
    const l = await listLetters(r.db, r.stage, { key: 'x' });
    return l.length === 3 ? l : undefined;
  });
  expect(parked.map((l) => [l.eventId, l.code])).toEqual([
    ['x#1', 'HANDLER_FAILED'],
    ['x#2', 'KEY_PARKED'],
    ['x#3', 'KEY_PARKED'],
  ]);
  expect((await counters(r.db)).get('x')!.seqs).toEqual([0]);

  // An event arriving while parked waits too.
  await send(r, [counterEvent('x', 4)]);
  await eventually(async () =>
    (await listLetters(r.db, r.stage, { key: 'x' })).length === 4 ? true : undefined,
  );

  await new Promise((res) => setTimeout(res, Math.max(0, healAt - Date.now())));
  const result = await redrive({ db: r.db, producer: r.producer, stage: r.stage, key: 'x' });
  expect(result.redriven).toBe(4);
  const got = await countsReach(r.db, { x: 5 });
  expect(got.get('x')!.seqs).toEqual([0, 1, 2, 3, 4]);
  await eventually(async () =>
    (await deadLetters(r.db).countDocuments({ key: 'x', status: { $ne: 'resolved' } })) === 0
      ? true
      : undefined,
  );
  // Once every letter of the key is resolved, new events flow normally again.
  await send(r, [counterEvent('x', 5)]);
  expect((await countsReach(r.db, { x: 6 })).get('x')!.seqs).toEqual([0, 1, 2, 3, 4, 5]);
});

test('graceful stop commits what it finished; a restart applies nothing twice and loses nothing', async () => {
  const p = prefix('graceful');
  const topology = counterTopology(p);
  const config = testConfig();
  const producer = await testProducer(config, topology);
  const first = await runProcessor(config, topology);
  // A client of the test's own: the processor's closes when it stops.
  const { db } = await freshDbNamed(config.mongoDb);
  const events = range(300).map((i) => counterEvent(`g${i % 30}`, Math.floor(i / 30), { delayMs: 5 }));
  await producer.publish(events.map((e) => ({ topic: `${p}.in`, key: e.id, value: e, eventId: e.eventId })));
  await eventually(async () => ((await db.collection(COUNTERS).countDocuments()) >= 10 ? true : undefined));
  await first.stop();

  // Per partition, the committed offset is the end of what the first instance finished: every event
  // below it has a finished provenance record, and the event at it had not finished. (Events of other
  // keys past it may have been applied: they come again after the restart and the guard absorbs them.)
  const admin = kafkaClient().admin();
  await admin.connect();
  onCleanup(() => admin.disconnect());
  const offsets = await admin.fetchOffsets({
    groupId: groupIdFor(config.applicationId, `${p}.counter`),
    topics: [`${p}.in`],
  });
  const finished = await db
    .collection<ProvenanceRecord>(PROVENANCE_COLLECTION)
    .find({ stage: `${p}.counter` })
    .toArray();
  let committedTotal = 0;
  for (const { partition, offset } of offsets[0]!.partitions) {
    const committed = Math.max(0, Number(offset));
    committedTotal += committed;
    const done = new Set(finished.filter((r) => r.partition === partition).map((r) => Number(r.offset)));
    for (let o = 0; o < committed; o++) expect(done.has(o)).toBe(true);
    expect(done.has(committed)).toBe(false);
  }
  expect(committedTotal).toBeGreaterThan(0);
  expect(committedTotal).toBeLessThan(300);

  await runProcessor(config, topology);
  const got = await countsReach(db, Object.fromEntries(range(30).map((i) => [`g${i}`, 10])));
  for (const d of got.values()) {
    expect(d.count).toBe(10);
    expect(d.seqs).toEqual(range(10));
  }
});

test('every handled event has a complete provenance record, queryable by entity and by event', async () => {
  const r = await start('prov');
  await send(r, [counterEvent('e1', 0), counterEvent('e1', 1)]);
  await countsReach(r.db, { e1: 2 });
  const rows = await eventually(async () => {
    const x = await byEntity(r.db, 'e1');
    return x.length === 2 && x.every((row) => row.committedAt) ? x : undefined;
  });
  for (const row of rows) {
    expect(row).toMatchObject({ stage: r.stage, key: 'e1', outcome: 'applied', attempt: 1 });
    for (const f of ['consumedAt', 'readStartedAt', 'writeStartedAt', 'finishedAt', 'committedAt'] as const) {
      expect(row[f]).toEqual(expect.any(Number));
    }
    expect(row.consumedAt).toBeLessThanOrEqual(row.readStartedAt!);
    expect(row.readStartedAt!).toBeLessThanOrEqual(row.writeStartedAt!);
    expect(row.finishedAt).toBeLessThanOrEqual(Number(row.committedAt));
    expect(row.emitted).toHaveLength(1);
    expect(row.traceId).toMatch(/^[0-9a-f]{32}$/);
  }
});
