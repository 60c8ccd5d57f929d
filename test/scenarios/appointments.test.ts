// The appointments dataflow against the real broker, registry and Mongo-protocol server: late events,
// upstream duplicates (which add no row and no change record), the change topic read by a stock Avro
// consumer, and the HTTP routes.
import { Type } from 'avsc';
import type { Db } from 'mongodb';
import { createServer } from '../../src/api/server';
import { appointmentsFlow, type AppointmentDoc, type ChangeRow } from '../../src/appointments';
import type { AppointmentEvent, AppointmentKind } from '../../src/appointments/schemas';
import { APPOINTMENTS_STAGE } from '../../src/appointments';
import { APPOINTMENT_CHANGES, APPOINTMENTS } from '../../src/appointments/tables';
import { createLogger } from '../../src/logger';
import { HEADERS } from '../../src/producers/headers';
import type { KeyedProducer } from '../../src/producers/producer';
import type { Processor } from '../../src/runtime/processor';
import { byEvent } from '../../src/state/provenance';
import type { Config } from '../../src/config';
import { groupIdFor } from '../../src/topology/names';
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
import { dropAfter, prefix, runProcessor, testConfig, testProducer } from './harness';

afterAll(cleanupAll);

interface Running {
  config: Config;
  group: string;
  processor: Processor;
  producer: KeyedProducer;
  db: Db;
  input: string;
  output: string;
  flow: ReturnType<typeof appointmentsFlow>;
}

async function start(name: string): Promise<Running> {
  const p = prefix(name);
  const flow = appointmentsFlow({ prefix: p });
  const topology = { topics: flow.topics, stages: flow.stages };
  const config = testConfig();
  const producer = await testProducer(config, topology);
  const processor = await runProcessor(config, topology, { indexes: flow.indexes });
  const db = processor.context.db;
  dropAfter(() => db);
  return {
    config,
    group: groupIdFor(config.applicationId, `${p}.${APPOINTMENTS_STAGE}`),
    processor,
    producer,
    db,
    flow,
    input: `${p}.external.appointments.v1`,
    output: `${p}.changes.appointments.v1`,
  };
}

const T0 = Date.UTC(2026, 10, 1);

function ev(
  appointmentId: string,
  n: number,
  kind: AppointmentKind,
  occurredAt: number,
  scheduledFor: number | null,
  tenantId = 'acme',
): AppointmentEvent {
  return {
    eventId: `${appointmentId}-e${n}`,
    tenantId,
    appointmentId,
    leadId: 'lead-1',
    kind,
    scheduledFor,
    occurredAt: T0 + occurredAt,
    source: 'crm',
  };
}

/** Publishes like an upstream system: key = appointmentId, one send per call, so offsets follow the order. */
async function send(r: Running, events: AppointmentEvent[]): Promise<void> {
  for (const e of events) {
    await r.producer.publish([{ topic: r.input, key: e.appointmentId, value: e, eventId: e.eventId }]);
  }
}

async function rowsOf(db: Db, appointmentId: string, n: number): Promise<ChangeRow[]> {
  return eventually(
    async () => {
      const rows = await db
        .collection<ChangeRow>(APPOINTMENT_CHANGES)
        .find({ appointmentId })
        .sort({ occurredAt: 1 })
        .toArray();
      return rows.length >= n ? rows : undefined;
    },
    60_000,
    `${n} change rows of ${appointmentId}`,
  );
}

/** Resolves once the stage has committed all of its input: every record it emits is sent before that. */
async function drained(r: Running): Promise<void> {
  const admin = await adminClient();
  await eventually(
    async () => {
      const ends = await admin.fetchTopicOffsets(r.input);
      const [committed] = await admin.fetchOffsets({ groupId: r.group, topics: [r.input] });
      const at = new Map(committed!.partitions.map((x) => [x.partition, Math.max(0, Number(x.offset))]));
      return ends.every((e) => (at.get(e.partition) ?? 0) >= Number(e.high)) ? true : undefined;
    },
    60_000,
    `${r.group} to commit all of ${r.input}`,
  );
}

/** Waits until every delivery of `eventId` is handled (provenance records one per delivery). */
async function handled(db: Db, eventId: string, deliveries: number): Promise<string[]> {
  return eventually(
    async () => {
      const recs = await byEvent(db, eventId);
      return recs.length >= deliveries ? recs.map((x) => x.outcome) : undefined;
    },
    60_000,
    `${deliveries} deliveries of ${eventId}`,
  );
}

// An old SCHEDULED, then a RESCHEDULED, then the CANCELLED that happened between them arrives late,
// then the RESCHEDULED again at a later offset (an upstream re-send).
const scenario = (id: string) => [
  ev(id, 1, 'SCHEDULED', 1_000, T0 + 50_000_000),
  ev(id, 3, 'RESCHEDULED', 3_000, T0 + 90_000_000),
  ev(id, 2, 'CANCELLED', 2_000, null),
  ev(id, 3, 'RESCHEDULED', 3_000, T0 + 90_000_000),
];

test('a late appointment event never overwrites newer state, is flagged out of order, and a duplicate adds no row', async () => {
  const r = await start('appt-late');
  await send(r, scenario('appt-1'));
  const outcomes = await handled(r.db, 'appt-1-e3', 2);
  expect(outcomes.sort()).toEqual(['applied', 'duplicate']);

  const rows = await rowsOf(r.db, 'appt-1', 3);
  expect(rows.map((x) => [x.eventId, x.outOfOrder, x.before?.status ?? null, x.after.status])).toEqual([
    ['appt-1-e1', false, null, 'SCHEDULED'],
    ['appt-1-e2', true, 'RESCHEDULED', 'RESCHEDULED'],
    ['appt-1-e3', false, 'SCHEDULED', 'RESCHEDULED'],
  ]);
  for (const row of rows) {
    expect(row.consumedAt).toBeLessThanOrEqual(row.readStartedAt!);
    expect(row.readStartedAt).toBeLessThanOrEqual(row.writeStartedAt!);
  }

  const doc = await r.db.collection<AppointmentDoc>(APPOINTMENTS).findOne({ _id: 'appt-1' });
  expect(doc).toMatchObject({
    tenantId: 'acme',
    status: 'RESCHEDULED',
    scheduledFor: T0 + 90_000_000,
    lastOccurredAt: T0 + 3_000,
    version: 2,
  });
  expect(await r.db.collection('RSAppointmentEvents').countDocuments({ entityId: 'appt-1' })).toBe(3);
  // The late event's provenance carries the flag the out-of-order metric counts.
  const late = await eventually(async () => (await byEvent(r.db, 'appt-1-e2'))[0]);
  expect(late.outOfOrder).toBe(true);

  // Replay agrees with what the live stage wrote.
  for (const table of r.flow.replay) {
    const expected = await table.expected(r.db, 'appt-1');
    const actual = await table.actual(r.db, 'appt-1');
    expect(actual).toHaveLength(expected.length);
    for (const exp of expected) {
      const act = actual.find((a) => a._id === exp._id)!;
      for (const f of table.fields) expect([f, act[f]]).toEqual([f, exp[f]]);
    }
  }
});

test('the change topic carries one record per applied change, decodable by a stock Avro consumer', async () => {
  const r = await start('appt-topic');
  await send(r, scenario('appt-2'));
  await handled(r.db, 'appt-2-e3', 2);
  const rows = await rowsOf(r.db, 'appt-2', 3);
  await drained(r);
  const ends = await (await adminClient()).fetchTopicOffsets(r.output);

  const consumer = kafkaClient().consumer({ groupId: uniqueName('appt-reader') });
  await consumer.connect();
  onCleanup(() => consumer.disconnect());
  await consumer.subscribe({ topic: r.output, fromBeginning: true });
  const seen: { key: string; eventId: string; value: Buffer }[] = [];
  const next = readPositions(consumer);
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      seen.push({
        key: message.key!.toString(),
        eventId: String(message.headers?.[HEADERS.EVENT_ID]),
        value: message.value!,
      });
      next.set(partition, Math.max(next.get(partition) ?? 0, Number(message.offset) + 1));
    },
  });
  await eventually(
    async () => (ends.every((e) => (next.get(e.partition) ?? 0) >= Number(e.high)) ? true : undefined),
    60_000,
    'the change topic read to its end',
  );
  // Three changes; the upstream re-send of e3 (at a later offset) emits none.
  expect(seen).toHaveLength(3);
  expect(new Set(seen.map((s) => s.eventId)).size).toBe(3);

  // A stock consumer: the writer schema by the id in bytes 1-4, from the registry's HTTP API, and avsc.
  const decoded = [];
  for (const s of seen) {
    expect(s.value[0]).toBe(0);
    const res = await fetch(`${env('SCHEMA_REGISTRY_URL')}/schemas/ids/${s.value.readInt32BE(1)}`);
    expect(res.status).toBe(200);
    const { schema } = (await res.json()) as { schema: string };
    decoded.push(
      Type.forSchema(JSON.parse(schema)).fromBuffer(s.value.subarray(5)) as Record<string, unknown>,
    );
    expect(s.key).toBe('appt-2');
  }
  const byCause = new Map(decoded.map((d) => [d.eventId as string, d]));
  expect(byCause.size).toBe(3);
  for (const row of rows) {
    expect(byCause.get(row.eventId)).toEqual({
      appointmentId: 'appt-2',
      tenantId: 'acme',
      eventId: row.eventId,
      occurredAt: row.occurredAt,
      outOfOrder: row.outOfOrder,
      before: row.before,
      after: row.after,
    });
  }
});

test('the routes answer: an appointment with its history, out-of-order changes, 404 and 400', async () => {
  const r = await start('appt-routes');
  await send(r, [...scenario('appt-3'), ev('appt-4', 1, 'SCHEDULED', 500, null, 'other')]);
  await handled(r.db, 'appt-3-e3', 2);
  await rowsOf(r.db, 'appt-4', 1);

  const server = createServer({
    log: createLogger('error'),
    registry: r.processor.metrics,
    health: r.processor.health,
    routes: [r.flow.adminRoutes!(r.processor.context)],
  });
  onCleanup(() => server.close());
  const port = await server.listen(0, '127.0.0.1');
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  const one = await get('/tenants/acme/appointments/appt-3');
  expect(one.status).toBe(200);
  expect(one.body.appointment).toMatchObject({ _id: 'appt-3', status: 'RESCHEDULED' });
  expect((one.body.history as ChangeRow[]).map((h) => h.eventId)).toEqual([
    'appt-3-e1',
    'appt-3-e2',
    'appt-3-e3',
  ]);

  // Another tenant's appointment is as absent as a missing one.
  for (const path of ['/tenants/acme/appointments/appt-4', '/tenants/acme/appointments/nope']) {
    const res = await get(path);
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'NOT_FOUND' });
  }

  const ooo = await get(`/tenants/acme/out-of-order?from=${T0}&to=${T0 + 10_000}&limit=10`);
  expect(ooo.status).toBe(200);
  expect(ooo.body.count).toBe(1);
  expect((ooo.body.changes as ChangeRow[]).map((c) => c.eventId)).toEqual(['appt-3-e2']);
  expect((await get(`/tenants/other/out-of-order`)).body.count).toBe(0);

  const bad = [
    ['/tenants/acme/appointments/%24ne', 'params.appointmentId'],
    ['/tenants/ac%20me/out-of-order', 'params.tenantId'],
    ['/tenants/acme/out-of-order?from=abc', 'query.from'],
    ['/tenants/acme/out-of-order?from=10&to=5', 'query.from'],
    ['/tenants/acme/out-of-order?limit=5000', 'query.limit'],
    ['/tenants/acme/out-of-order?from[$gt]=1', 'query'],
  ];
  for (const [path, field] of bad) {
    const res = await get(path!);
    expect([path, res.status]).toEqual([path, 400]);
    expect((res.body.error as { message: string }).message).toContain(field);
  }
});
