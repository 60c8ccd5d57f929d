// The lead conversions dataflow against the real broker, registry and Mongo-protocol server: exact rows
// under shuffling, duplicates and a SIGKILL; one change per distinct event, re-sent only by its own
// redelivered input record; a change topic any Avro consumer reads; routes; replay.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import * as avro from 'avsc';
import type { Admin, Producer } from 'kafkajs';
import type { Db } from 'mongodb';
import { createServer } from '../../src/api/server';
import type { Config } from '../../src/config';
import { conversionsFlow } from '../../src/conversions';
import { reduceConversions, rowIdOf, type ConversionRow } from '../../src/conversions/reducer';
import { conversionsReplay } from '../../src/conversions/replay';
import type { ConversionChange, ConversionEvent } from '../../src/conversions/schemas';
import { archiveOf, rowsOf } from '../../src/conversions/store';
import { createLogger } from '../../src/logger';
import { HEADERS } from '../../src/producers/headers';
import { listLetters } from '../../src/state/dead-letters';
import type { Processor } from '../../src/runtime/processor';
import { RegistryCodec } from '../../src/schemas/codec';
import {
  adminClient,
  cleanupAll,
  env,
  eventually,
  kafkaClient,
  onCleanup,
  readPositions,
  uniqueName,
} from '../helpers';
import { exited, freshDbNamed, prefix, runProcessor, spawnInstance, testConfig } from './harness';

// Each test stops its processors when it ends: a stage left running from an earlier test competes with
// the next for the event loop and the store, and its group churns while a busy test blocks heartbeats.
afterEach(cleanupAll);

interface Names {
  p: string;
  input: string;
  output: string;
  stage: string;
}

function names(name: string): Names {
  const p = prefix(name);
  return {
    p,
    input: `${p}.external.conversions.v1`,
    output: `${p}.changes.lead-conversions.v1`,
    stage: `${p}.lead-conversions`,
  };
}

/** Our codec, knowing the flow's topics (registering is idempotent). */
async function codecFor(config: Config, n: Names): Promise<RegistryCodec> {
  const codec = new RegistryCodec({ url: config.schemaRegistryUrl });
  await codec.registerAll(conversionsFlow({ prefix: n.p }).topics);
  return codec;
}

/** Sends conversions as upstream does: Avro values, leadId keys, no Keyflow headers. */
async function upstream(config: Config, n: Names): Promise<(events: ConversionEvent[]) => Promise<void>> {
  const codec = await codecFor(config, n);
  const producer: Producer = kafkaClient().producer();
  await producer.connect();
  onCleanup(() => producer.disconnect());
  return async (events) => {
    for (let i = 0; i < events.length; i += 250) {
      const messages = await Promise.all(
        events.slice(i, i + 250).map(async (e) => ({ key: e.leadId, value: await codec.encode(n.input, e) })),
      );
      await producer.send({ topic: n.input, messages });
    }
  };
}

async function startInProcess(
  name: string,
): Promise<{ n: Names; processor: Processor; db: Db; config: Config }> {
  const n = names(name);
  const config = testConfig();
  const flow = conversionsFlow({ prefix: n.p });
  const processor = await runProcessor(
    config,
    { topics: flow.topics, stages: flow.stages },
    { indexes: flow.indexes },
  );
  const { db } = await freshDbNamed(config.mongoDb);
  return { n, processor, db, config };
}

/** Resolves once the stage has committed every record of its input: all of it is processed. */
async function drained(admin: Admin, n: Names, timeoutMs = 90_000): Promise<void> {
  await eventually(
    async () => {
      const ends = await admin.fetchTopicOffsets(n.input);
      const [committed] = await admin.fetchOffsets({ groupId: n.stage, topics: [n.input] });
      // A partition the group never committed on answers -1; with nothing in it (high 0) it is done.
      const at = new Map(committed!.partitions.map((x) => [x.partition, Math.max(0, Number(x.offset))]));
      return ends.every((e) => (at.get(e.partition) ?? 0) >= Number(e.high)) ? true : undefined;
    },
    timeoutMs,
    `${n.stage} to commit all of ${n.input}`,
  );
}

async function tableRows(db: Db): Promise<ConversionRow[]> {
  const docs = await rowsOf(db).find().toArray();
  return docs
    .map(({ tenantId, leadId, conversionType, count, amount, firstAt, lastAt }) => ({
      tenantId,
      leadId,
      conversionType,
      count,
      amount,
      firstAt,
      lastAt,
    }))
    .sort((a, b) => (rowIdOf(a) < rowIdOf(b) ? -1 : 1));
}

/** A seeded generator: a failing run can be reproduced. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const TYPES = ['contacted', 'appointment_set', 'sold'];

/**
 * Distinct conversions over `leads` leads of two tenants, shuffled; then duplicates: 10% sent twice in
 * a row (the same record at the next offset), 10% re-sent at a random later offset, and the first
 * event of a hot row (90 events) re-sent after all of them, far beyond the guard's 64-id window.
 */
function workload(seed: number, leads: number, perLead: number) {
  const rand = rng(seed);
  const distinct: ConversionEvent[] = [];
  for (let i = 0; i < leads * perLead; i++) {
    const lead = i % leads;
    distinct.push({
      eventId: `ev-${seed}-${i}`,
      tenantId: `tenant-${lead % 2}`,
      leadId: `lead-${lead}`,
      conversionType: TYPES[Math.floor(rand() * TYPES.length)]!,
      occurredAt: 1_735_689_600_000 + Math.floor(rand() * 30 * 86_400_000),
      amount: rand() < 0.25 ? null : Math.round(rand() * 10_000) / 100,
    });
  }
  const hot = Array.from({ length: 90 }, (_, i) => ({
    eventId: `hot-${seed}-${i}`,
    tenantId: 'tenant-0',
    leadId: 'lead-hot',
    conversionType: 'sold',
    occurredAt: 1_735_689_600_000 + i * 1000,
    amount: 0.1,
  }));
  distinct.push(...hot);
  const order = [...distinct];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const deliveries: ConversionEvent[] = [];
  const later: ConversionEvent[] = [];
  for (const e of order) {
    deliveries.push(e);
    const r = rand();
    if (r < 0.1) deliveries.push({ ...e });
    else if (r < 0.2) later.push({ ...e });
  }
  for (const e of later) deliveries.splice(Math.floor(rand() * deliveries.length) + 1, 0, e);
  // Its first event last: 89 other events of the hot row lie between the two sends.
  deliveries.push({ ...hot[0]! });
  return { distinct, deliveries };
}

test('shuffled conversions, sent twice in a row or re-sent much later, give exactly the rows of the distinct events', async () => {
  // Behaviour: RSLeadGlobalConversions equals the reducer over the DISTINCT events whatever the arrival
  // order, and no duplicate counts twice, however far from its first send it arrives. Nor does it add a
  // change record: the change topic holds one change per distinct event, each row's chained.
  const { n, db, config } = await startInProcess('conv-exact');
  const send = await upstream(config, n);
  const { distinct, deliveries } = workload(7, 40, 12);
  expect(deliveries.length).toBeGreaterThan(distinct.length * 1.15); // the re-sends are there
  await send(deliveries);
  await drained(await adminClient(), n);
  expect(await tableRows(db)).toEqual(reduceConversions(distinct));
  const hot = (await tableRows(db)).find((r) => r.leadId === 'lead-hot')!;
  expect(hot.count).toBe(90);
  expect(await archiveOf(db).countDocuments()).toBe(distinct.length);
  const changes = await readChanges(config, n);
  expect(changes.map((c) => c.eventId).sort()).toEqual(distinct.map((e) => e.eventId).sort());
  expectChained(changes);
});

/** Per row, in topic order (one lead key, one partition), each change starts where the previous ended. */
function expectChained(changes: readonly ConversionChange[]): void {
  const last = new Map<string, ConversionChange['after']>();
  const broken: string[] = [];
  for (const c of changes) {
    const row = rowIdOf(c);
    if (JSON.stringify(c.before) !== JSON.stringify(last.get(row) ?? null))
      broken.push(`${row} at ${c.eventId}`);
    last.set(row, c.after);
  }
  expect(broken).toEqual([]);
}

test('a redelivered input record re-sends its stored change, identical; its re-sends still add none', async () => {
  // Behaviour: an input record comes again only when its change never became visible (a crash before
  // its commit; here the group's offsets are rewound to make every record come again), and it then
  // re-sends the change it stored, byte for byte, not one decided again on the table that already
  // counts it. The upstream re-sends among those records emit nothing, the first time or the second.
  const { n, db, config, processor } = await startInProcess('conv-redeliver');
  const send = await upstream(config, n);
  const { distinct, deliveries } = workload(13, 20, 6);
  await send(deliveries);
  const admin = await adminClient();
  await drained(admin, n);
  const once = await readRaw(n);
  expect(once).toHaveLength(distinct.length);
  await processor.stop();
  await admin.resetOffsets({ groupId: n.stage, topic: n.input, earliest: true });
  const flow = conversionsFlow({ prefix: n.p });
  await runProcessor(config, { topics: flow.topics, stages: flow.stages }, { indexes: flow.indexes });
  await drained(admin, n);
  expect(await tableRows(db)).toEqual(reduceConversions(distinct));
  const twice = await readRaw(n);
  // Each distinct event's change once more, from the record that counted it: same key, value, event id.
  expect(twice).toHaveLength(2 * distinct.length);
  const first = new Map(once.map((r) => [r.eventId, r]));
  for (const r of twice.slice(once.length)) expect(r).toEqual(first.get(r.eventId));
});

/** The change topic's records as bytes: key, value and event id header, in partition order. */
async function readRaw(n: Names): Promise<{ key: string; value: string; eventId: string }[]> {
  const topic = n.output;
  const ends = await (await adminClient()).fetchTopicOffsets(topic);
  const consumer = kafkaClient().consumer({ groupId: uniqueName('changes-raw') });
  await consumer.connect();
  onCleanup(() => consumer.disconnect());
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen: { partition: number; offset: number; key: string; value: string; eventId: string }[] = [];
  const next = readPositions(consumer);
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const eventId = String(message.headers?.[HEADERS.EVENT_ID]);
      const { key, value } = message;
      seen.push({
        partition,
        offset: Number(message.offset),
        key: String(key),
        value: value!.toString('hex'),
        eventId,
      });
      next.set(partition, Math.max(next.get(partition) ?? 0, Number(message.offset) + 1));
    },
  });
  await eventually(
    async () => (ends.every((e) => (next.get(e.partition) ?? 0) >= Number(e.high)) ? true : undefined),
    60_000,
    `reading ${topic} to its end`,
  );
  await consumer.disconnect();
  // Within a partition, the first pass's records come before the redelivery's.
  seen.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  const firstPass = seen.filter((r, i) => seen.findIndex((x) => x.eventId === r.eventId) === i);
  const again = seen.filter((r, i) => seen.findIndex((x) => x.eventId === r.eventId) !== i);
  return [...firstPass, ...again].map(({ key, value, eventId }) => ({ key, value, eventId }));
}

/** Every message on the stage's dead-letter topic now, as key, headers: read up to its end offsets. */
async function readDeadLetters(n: Names): Promise<{ key: string; headers: Record<string, string> }[]> {
  const topic = `${n.stage}.dlq`;
  const ends = await (await adminClient()).fetchTopicOffsets(topic);
  const consumer = kafkaClient().consumer({ groupId: uniqueName('dlq-reader') });
  await consumer.connect();
  onCleanup(() => consumer.disconnect());
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen: { key: string; headers: Record<string, string> }[] = [];
  const next = readPositions(consumer);
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const headers = Object.fromEntries(
        Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
      );
      seen.push({ key: message.key!.toString(), headers });
      next.set(partition, Math.max(next.get(partition) ?? 0, Number(message.offset) + 1));
    },
  });
  await eventually(
    async () => (ends.every((e) => (next.get(e.partition) ?? 0) >= Number(e.high)) ? true : undefined),
    60_000,
    `reading ${topic} to its end`,
  );
  return seen;
}

test('an event id is scoped by tenant; a re-send 10,000 events later counts once; other content is EVENT_ID_REUSED', async () => {
  // Behaviour: dedupe is keyed by (tenantId, eventId). Two tenants sending the same id for the same
  // lead id are both counted; the same send again after 10,000 other events of its partition (the
  // same lead) counts nothing; the id re-sent with another amount is not applied but dead-lettered
  // as EVENT_ID_REUSED, naming the field that differs.
  const { n, db, config } = await startInProcess('conv-tenant-ids');
  const send = await upstream(config, n);
  const original = {
    eventId: 'shared-1',
    tenantId: 'tenant-a',
    leadId: 'lead-x',
    conversionType: 'sold',
    occurredAt: 1_735_689_600_000,
    amount: 10,
  };
  await send([original, { ...original, tenantId: 'tenant-b', amount: 20 }]);
  const filler = Array.from({ length: 10_000 }, (_, i) => ({
    ...original,
    eventId: `fill-${i}`,
    conversionType: 'contacted',
    occurredAt: original.occurredAt + i,
    amount: null,
  }));
  await send(filler);
  await send([{ ...original }, { ...original, amount: 99 }]);
  await drained(await adminClient(), n);

  const rows = (await tableRows(db)).map((r) => [r.tenantId, r.conversionType, r.count, r.amount]);
  expect(rows).toEqual([
    ['tenant-a', 'contacted', 10_000, 0],
    ['tenant-a', 'sold', 1, 10],
    ['tenant-b', 'sold', 1, 20],
  ]);
  expect(await archiveOf(db).countDocuments()).toBe(10_002);

  const letters = await listLetters(db, n.stage);
  expect(letters.map((l) => [l.key, l.eventId, l.code])).toEqual([['lead-x', 'shared-1', 'EVENT_ID_REUSED']]);
  const dlq = await readDeadLetters(n);
  expect(dlq).toHaveLength(1);
  expect(dlq[0]!.key).toBe('lead-x');
  expect(dlq[0]!.headers[HEADERS.DLQ_CODE]).toBe('EVENT_ID_REUSED');
  expect(dlq[0]!.headers[HEADERS.DLQ_MESSAGE]).toMatch(/tenant tenant-a.*amount \(first 10, now 99\)/);
});

test('a conversion keyed by anything but its leadId is KEY_MISMATCH in the dead-letter topic, and its partition goes on', async () => {
  // Behaviour: the topic contract is key = leadId. Rows are folded per key, so two events of one row
  // under two keys (a producer keying by event id) would both count from the same version: each is
  // dead-lettered as KEY_MISMATCH instead, and the events after them on the same partition are
  // applied. One event id sent under two leads in one batch counts once; the second is
  // EVENT_ID_REUSED (its archive insert meets the first's and is read again), not a handler failure.
  const { n, db, config } = await startInProcess('conv-key-contract');
  const codec = await codecFor(config, n);
  const producer: Producer = kafkaClient().producer();
  await producer.connect();
  onCleanup(() => producer.disconnect());
  const base = { tenantId: 'acme', conversionType: 'sold', occurredAt: 1_735_689_600_000 };
  const sent: [string, ConversionEvent][] = [
    ['ev-k1', { ...base, eventId: 'ev-k1', leadId: 'lead-k', amount: 1 }],
    ['ev-k2', { ...base, eventId: 'ev-k2', leadId: 'lead-k', amount: 2 }],
    ['lead-k', { ...base, eventId: 'ev-k3', leadId: 'lead-k', amount: 4 }],
    ['lead-m', { ...base, eventId: 'ev-m1', leadId: 'lead-m', amount: 8 }],
    ['lead-r1', { ...base, eventId: 'dup-1', leadId: 'lead-r1', amount: 16 }],
    ['lead-r2', { ...base, eventId: 'dup-1', leadId: 'lead-r2', amount: 16 }],
  ];
  // One partition, one request: the refused records and the good ones after them share a partition
  // and a fetch.
  await producer.send({
    topic: n.input,
    messages: await Promise.all(
      sent.map(async ([key, e]) => ({ key, partition: 0, value: await codec.encode(n.input, e) })),
    ),
  });
  await drained(await adminClient(), n);

  expect((await tableRows(db)).map((r) => [r.leadId, r.count, r.amount])).toEqual([
    ['lead-k', 1, 4],
    ['lead-m', 1, 8],
    ['lead-r1', 1, 16],
  ]);
  const letters = await listLetters(db, n.stage);
  expect(letters.map((l) => [l.key, l.eventId, l.code]).sort()).toEqual([
    ['ev-k1', 'ev-k1', 'KEY_MISMATCH'],
    ['ev-k2', 'ev-k2', 'KEY_MISMATCH'],
    ['lead-r2', 'dup-1', 'EVENT_ID_REUSED'],
  ]);
  const dlq = (await readDeadLetters(n)).map((d) => [d.key, d.headers[HEADERS.DLQ_CODE]]).sort();
  expect(dlq).toEqual([
    ['ev-k1', 'KEY_MISMATCH'],
    ['ev-k2', 'KEY_MISMATCH'],
    ['lead-r2', 'EVENT_ID_REUSED'],
  ]);
});

const SCRIPT = path.join(__dirname, 'fixtures', 'run-conversions.ts');

function startInstance(n: Names, config: Config): Promise<ChildProcess> {
  return spawnInstance(SCRIPT, { SCN_PREFIX: n.p, MONGO_DB: config.mongoDb });
}

/** Every change record on the topic now, decoded with our codec: read up to the current end offsets. */
/**
 * Reads the change topic with read_committed until it is at the topic's end and `complete` holds. The end
 * is read again on every check: on @platformatic/kafka each process has its own transactional id, so a
 * SIGKILLed member's open transaction is not fenced by its successor; it holds the last stable offset
 * back until the broker aborts it (transaction timeout, then the broker's check every 10 s), and the
 * changes committed after it become readable only then.
 */
async function readChanges(
  config: Config,
  n: Names,
  complete: (seen: ConversionChange[]) => boolean = () => true,
): Promise<ConversionChange[]> {
  const topic = n.output;
  const admin = await adminClient();
  const codec = await codecFor(config, n);
  const consumer = kafkaClient().consumer({ groupId: uniqueName('changes-reader') });
  await consumer.connect();
  onCleanup(() => consumer.disconnect());
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen: ConversionChange[] = [];
  const next = readPositions(consumer);
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      seen.push((await codec.decode<ConversionChange>(topic, message.value!)).value);
      next.set(partition, Math.max(next.get(partition) ?? 0, Number(message.offset) + 1));
    },
  });
  await eventually(
    async () => {
      const ends = await admin.fetchTopicOffsets(topic);
      const atEnd = ends.every((e) => (next.get(e.partition) ?? 0) >= Number(e.high));
      return atEnd && complete(seen) ? true : undefined;
    },
    60_000,
    `reading ${topic} to its end`,
  );
  return seen;
}

test('a processor killed with SIGKILL mid-stream and restarted still ends exact, re-emitting identical changes', async () => {
  // Behaviour: dying between any two writes (archive, row, emit, commit) loses nothing and counts
  // nothing twice; a redelivered input record re-emits the very change record it first emitted (in
  // at-least-once mode the records sent before the kill stay on the topic too: that mode's contract).
  const n = names('conv-kill');
  const config = testConfig();
  const { db } = await freshDbNamed(config.mongoDb);
  const first = await startInstance(n, config);
  const send = await upstream(config, n);
  const { distinct, deliveries } = workload(11, 300, 12);
  // The second half goes out only after the kill, so the kill lands mid-stream however fast the
  // first instance works through the first half.
  const half = Math.floor(deliveries.length / 2);
  await send(deliveries.slice(0, half));
  await eventually(
    async () => ((await archiveOf(db).countDocuments()) >= distinct.length / 4 ? true : undefined),
    90_000,
    'a quarter archived',
  );
  first.kill('SIGKILL');
  await exited(first);
  expect(await archiveOf(db).countDocuments()).toBeLessThan(distinct.length); // it died mid-stream
  await send(deliveries.slice(half));
  const second = await startInstance(n, config);
  await drained(await adminClient(), n);
  expect(await tableRows(db)).toEqual(reduceConversions(distinct));

  const ids = new Set(distinct.map((e) => e.eventId));
  // The runner emits before it commits, so once drained every change is on the topic; a read_committed
  // reader sees the last of them once the killed member's open transaction is aborted (readChanges).
  const changes = await readChanges(
    config,
    n,
    (seen) => new Set(seen.map((c) => c.eventId)).size >= ids.size,
  );
  expect(new Set(changes.map((c) => c.eventId))).toEqual(ids);
  const byCause = new Map<string, ConversionChange>();
  for (const c of changes) {
    expect(ids.has(c.eventId)).toBe(true);
    const earlier = byCause.get(c.eventId);
    if (earlier) expect(c).toEqual(earlier); // a re-emission is identical, never a second increment
    byCause.set(c.eventId, c);
  }
  second.kill('SIGTERM');
  await exited(second);
});

test('the change topic is decodable by a stock Avro consumer with the writer schema from the registry', async () => {
  // Behaviour: a consumer that knows nothing of Keyflow (avsc + the registry's HTTP API) reads every
  // change: null `before` when the row is created, and the out-of-order flag for an older event.
  const { n, config } = await startInProcess('conv-avro');
  const send = await upstream(config, n);
  const base = { tenantId: 'acme', leadId: 'lead-a', conversionType: 'sold' };
  await send([
    { ...base, eventId: 'a1', occurredAt: 2_000, amount: 10.5 },
    { ...base, eventId: 'a2', occurredAt: 1_000, amount: null },
  ]);
  const raw: Buffer[] = [];
  const consumer = kafkaClient().consumer({ groupId: uniqueName('avro-reader') });
  await consumer.connect();
  onCleanup(() => consumer.disconnect());
  await consumer.subscribe({ topic: n.output, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void raw.push(message.value!) });
  await eventually(async () => (raw.length >= 2 ? true : undefined), 60_000, 'two change records');

  const decoded: unknown[] = [];
  for (const bytes of raw) {
    expect(bytes[0]).toBe(0); // Confluent wire format: magic byte, 4-byte schema id, Avro binary
    const id = bytes.readInt32BE(1);
    const res = await fetch(`${env('SCHEMA_REGISTRY_URL')}/schemas/ids/${id}`);
    expect(res.status).toBe(200);
    const { schema } = (await res.json()) as { schema: string };
    const type = avro.Type.forSchema(JSON.parse(schema) as avro.Schema);
    decoded.push(JSON.parse(JSON.stringify(type.fromBuffer(bytes.subarray(5)))));
  }
  expect(decoded).toEqual([
    {
      ...base,
      eventId: 'a1',
      occurredAt: 2_000,
      outOfOrder: false,
      before: null,
      after: { count: 1, amount: 10.5, firstAt: 2_000, lastAt: 2_000 },
    },
    {
      ...base,
      eventId: 'a2',
      occurredAt: 1_000,
      outOfOrder: true,
      before: { count: 1, amount: 10.5, firstAt: 2_000, lastAt: 2_000 },
      after: { count: 2, amount: 10.5, firstAt: 1_000, lastAt: 2_000 },
    },
  ]);
});

test('the routes answer a lead’s rows and a tenant’s totals per type over [from, to), and refuse bad input with 400', async () => {
  // Behaviour: GET .../leads/:leadId/conversions lists the lead's rows; .../conversions/totals groups
  // the tenant's distinct events by type within the range; bad ids, dates, ranges and `$` keys are 400s.
  const { n, processor, config } = await startInProcess('conv-routes');
  const send = await upstream(config, n);
  const day = Date.UTC(2025, 0, 1);
  const e = (eventId: string, conversionType: string, occurredAt: number, amount: number | null) => ({
    eventId,
    tenantId: 'acme',
    leadId: 'lead-1',
    conversionType,
    occurredAt,
    amount,
  });
  await send([
    e('r1', 'contacted', day, null),
    e('r2', 'sold', day + 3_600_000, 100),
    e('r3', 'sold', day + 86_400_000, 50.25),
    e('r2', 'sold', day + 3_600_000, 100),
    { ...e('r4', 'sold', day, 7), tenantId: 'other' },
  ]);
  await drained(await adminClient(), n);

  const server = createServer({
    log: createLogger('error'),
    registry: processor.metrics,
    health: processor.health,
    routes: [conversionsFlow({ prefix: n.p }).adminRoutes!(processor.context)],
  });
  onCleanup(() => server.close());
  const port = await server.listen(0, '127.0.0.1');
  const get = async (url: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${url}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  expect(await get('/tenants/acme/leads/lead-1/conversions')).toEqual({
    status: 200,
    body: {
      tenantId: 'acme',
      leadId: 'lead-1',
      conversions: [
        { conversionType: 'contacted', count: 1, amount: 0, firstAt: day, lastAt: day },
        {
          conversionType: 'sold',
          count: 2,
          amount: 150.25,
          firstAt: day + 3_600_000,
          lastAt: day + 86_400_000,
        },
      ],
    },
  });
  const firstDay = await get(`/tenants/acme/conversions/totals?from=2025-01-01&to=${day + 86_400_000}`);
  expect(firstDay).toEqual({
    status: 200,
    body: {
      tenantId: 'acme',
      from: day,
      to: day + 86_400_000,
      totals: [
        { conversionType: 'contacted', count: 1, amount: 0 },
        { conversionType: 'sold', count: 1, amount: 100 },
      ],
    },
  });
  const sold = await get(
    '/tenants/acme/conversions/totals?from=2025-01-01T00:00:00Z&to=2025-01-03&type=sold',
  );
  expect(sold.body.totals).toEqual([{ conversionType: 'sold', count: 2, amount: 150.25 }]);

  const refused: [string, RegExp][] = [
    ['/tenants/ac%24me/leads/lead-1/conversions', /params\.tenantId/],
    [`/tenants/acme/leads/${'x'.repeat(129)}/conversions`, /params\.leadId/],
    ['/tenants/acme/conversions/totals?from=2025-01-02&to=2025-01-01', /from must be before to/],
    ['/tenants/acme/conversions/totals?from=yesterday&to=2025-01-01', /query\.from: must be epoch/],
    ['/tenants/acme/conversions/totals?to=2025-01-01', /query\.from/],
    ['/tenants/acme/conversions/totals?from=1&to=2&tenantId[$ne]=x', /query/],
    ['/tenants/acme/conversions/totals?from=1&to=2&type=%24sold', /query\.type/],
  ];
  for (const [url, message] of refused) {
    const res = await get(url);
    expect({ url, status: res.status, code: (res.body.error as { code: string }).code }).toEqual({
      url,
      status: 400,
      code: 'VALIDATION_FAILED',
    });
    expect((res.body.error as { message: string }).message).toMatch(message);
  }
});

test('replay recomputes the live rows exactly, repairs a tampered row, and refuses to overwrite a row changed under it', async () => {
  // Behaviour: with the same reducer, replay's expected rows equal what the live stage wrote; repair
  // restores a drifted row and removes an unexpected one, but a row changed since it was read is a
  // HANDLER_TRANSIENT conflict, never silently overwritten.
  const { n, db, config } = await startInProcess('conv-replay');
  const send = await upstream(config, n);
  const { distinct, deliveries } = workload(3, 6, 8);
  await send(deliveries);
  await drained(await adminClient(), n);

  const leads = await conversionsReplay.entityIds(db, undefined, 1000);
  expect(leads).toEqual([...new Set(distinct.map((e) => e.leadId))].sort());
  expect(await conversionsReplay.entityIds(db, leads[2], 2)).toEqual(leads.slice(3, 5));
  for (const lead of leads) {
    const expected = await conversionsReplay.expected(db, lead);
    expect(await conversionsReplay.actual(db, lead)).toEqual(expected);
  }

  const lead = leads[0]!;
  const expected = await conversionsReplay.expected(db, lead);
  await rowsOf(db).updateOne({ _id: String(expected[0]!._id) }, { $inc: { count: 5 } });
  await rowsOf(db).insertOne({
    _id: rowIdOf({ tenantId: 'tenant-0', leadId: lead, conversionType: 'ghost' }),
    tenantId: 'tenant-0',
    leadId: lead,
    conversionType: 'ghost',
    count: 1,
    amount: 0,
    firstAt: 0,
    lastAt: 0,
    updatedAt: 0,
  });
  const drifted = await conversionsReplay.actual(db, lead);
  expect(drifted).not.toEqual(expected);

  // A live write lands between replay's read and its repair: the repair must refuse.
  await rowsOf(db).updateOne({ _id: String(expected[0]!._id) }, { $inc: { count: 1 } });
  await expect(conversionsReplay.repair(db, lead, expected, drifted)).rejects.toMatchObject({
    code: 'HANDLER_TRANSIENT',
    retriable: true,
  });

  const reread = await conversionsReplay.actual(db, lead);
  await conversionsReplay.repair(db, lead, expected, reread);
  expect(await conversionsReplay.actual(db, lead)).toEqual(expected);
});
