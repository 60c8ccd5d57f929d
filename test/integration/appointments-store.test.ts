// The appointments stage's writes against the real Mongo-protocol server: a crash between two writes is
// finished by the redelivery, a concurrent writer makes the stage retry, and replay repairs drift.
import type { Db } from 'mongodb';
import { appointmentsFlow } from '../../src/appointments';
import type { AppointmentPlan } from '../../src/appointments/decide';
import type { AppointmentFold } from '../../src/appointments/stage';
import { runBatch } from '../../src/consumers/batch';
import type { AppointmentEvent } from '../../src/appointments/schemas';
import { APPOINTMENT_CHANGES, APPOINTMENTS, type AppointmentDoc } from '../../src/appointments/tables';
import { eventKey } from '../../src/state/event-identity';
import { ensureIndexes } from '../../src/state/mongo';
import type { ActionContext, BatchStageSpec, StageEvent } from '../../src/topology/types';
import { cleanupAll, freshDb } from '../helpers';

afterAll(cleanupAll);

const flow = appointmentsFlow();
const stage = flow.stages[0] as BatchStageSpec<AppointmentEvent, AppointmentFold, AppointmentPlan>;
const [docTable, changesTable] = flow.replay;

function event(
  n: number,
  kind: AppointmentEvent['kind'],
  occurredAt: number,
  offset: number,
): StageEvent<AppointmentEvent> {
  const value: AppointmentEvent = {
    eventId: `e${n}`,
    tenantId: 'acme',
    appointmentId: 'a1',
    leadId: 'l1',
    kind,
    scheduledFor: kind === 'CANCELLED' ? null : 1_000_000 + n,
    occurredAt,
    source: 'crm',
  };
  return {
    key: 'a1',
    value,
    eventId: value.eventId,
    occurredAt,
    tenantId: 'acme',
    traceId: '0'.repeat(32),
    topic: 'external.appointments.v1',
    partition: 0,
    offset: String(offset),
    attempt: 1,
    headers: {},
    consumedAt: Date.now(),
  };
}

async function setup(): Promise<{ db: Db; ctx: ActionContext }> {
  const { db } = await freshDb('kfappt');
  await ensureIndexes(db, flow.indexes);
  return { db, ctx: { stage: 'appointments', db, now: Date.now } };
}

/** One event through the stage as the runner runs a batch of one. */
async function run(ctx: ActionContext, e: StageEvent<AppointmentEvent>) {
  const [o] = await runBatch(stage.handler, [e], ctx);
  if (o!.kind !== 'done') throw o!.kind === 'failed' ? o!.error : new Error('held');
  return { decision: { emit: o!.emit }, outcome: o!.outcome };
}

async function decide(ctx: ActionContext, e: StageEvent<AppointmentEvent>) {
  const states = await stage.handler.read([e], ctx);
  return stage.handler.decide(e, states.get(e.key)!);
}

test('a crash after the change row, before the document, is finished by the redelivery with the same record', async () => {
  const { db, ctx } = await setup();
  await run(ctx, event(1, 'SCHEDULED', 1000, 0));
  const e2 = event(2, 'RESCHEDULED', 2000, 1);
  const first = await decide(ctx, e2);
  // Write the plan as a process that dies before the document would: archive and row only.
  const plan = first.plan as Extract<AppointmentPlan, { kind: 'apply' }>;
  expect(
    (await stage.handler.write([{ index: 0, event: e2, plan: { ...plan, doc: null } }], ctx)).failed,
  ).toEqual([]);
  expect((await db.collection<AppointmentDoc>(APPOINTMENTS).findOne({ _id: 'a1' }))!.status).toBe(
    'SCHEDULED',
  );

  const again = await run(ctx, e2);
  expect(again.outcome).toBe('applied');
  expect(again.decision.emit).toEqual(first.emit);
  expect(await db.collection<AppointmentDoc>(APPOINTMENTS).findOne({ _id: 'a1' })).toMatchObject({
    status: 'RESCHEDULED',
    version: 2,
  });
  const third = await run(ctx, e2);
  expect(third.outcome).toBe('duplicate');
  expect(third.decision.emit).toEqual(first.emit);
  expect(await db.collection(APPOINTMENT_CHANGES).countDocuments()).toBe(2);
});

test('a write that finds the document moved since its read fails retriably, and the retry applies it', async () => {
  const { db, ctx } = await setup();
  await run(ctx, event(1, 'SCHEDULED', 1000, 0));
  const e3 = event(3, 'COMPLETED', 3000, 2);
  const stale = await decide(ctx, e3);
  // Another writer gets in between this read and the write.
  await run(ctx, event(2, 'RESCHEDULED', 2000, 1));
  const report = await stage.handler.write([{ index: 0, event: e3, plan: stale.plan! }], ctx);
  expect(report.failed).toEqual([
    { index: 0, error: expect.objectContaining({ code: 'HANDLER_TRANSIENT', retriable: true }) },
  ]);
  // The retry re-reads, finds its own row decided against the old version, and decides it again.
  const retry = await run(ctx, e3);
  expect(retry.outcome).toBe('applied');
  expect(retry.decision.emit[0]!.value).toMatchObject({ before: { status: 'RESCHEDULED' } });
  expect(await db.collection<AppointmentDoc>(APPOINTMENTS).findOne({ _id: 'a1' })).toMatchObject({
    status: 'COMPLETED',
    version: 3,
  });
  const row = await db.collection(APPOINTMENT_CHANGES).findOne({ _id: eventKey('acme', 'e3') as never });
  expect(row).toMatchObject({ baseVersion: 2, before: { status: 'RESCHEDULED' } });
});

test('replay finds drift in both tables and repairs it, refusing to overwrite a concurrent update', async () => {
  const { db, ctx } = await setup();
  await run(ctx, event(1, 'SCHEDULED', 1000, 0));
  await run(ctx, event(3, 'COMPLETED', 3000, 1));
  await run(ctx, event(2, 'CANCELLED', 2000, 2));
  expect(await docTable!.entityIds(db, undefined, 10)).toEqual(['a1']);
  expect(await docTable!.entityIds(db, 'a1', 10)).toEqual([]);

  // Drift: the document's status is wrong, a row lost its flag, and a stray row appeared.
  await db.collection(APPOINTMENTS).updateOne({ _id: 'a1' as never }, { $set: { status: 'NO_SHOW' } });
  await db
    .collection(APPOINTMENT_CHANGES)
    .updateOne({ _id: eventKey('acme', 'e2') as never }, { $set: { outOfOrder: false } });
  await db.collection(APPOINTMENT_CHANGES).insertOne({ _id: 'stray' as never, appointmentId: 'a1' });

  for (const table of [docTable!, changesTable!]) {
    const expected = await table.expected(db, 'a1');
    const actual = await table.actual(db, 'a1');
    await table.repair(db, 'a1', expected, actual);
  }
  expect(await db.collection<AppointmentDoc>(APPOINTMENTS).findOne({ _id: 'a1' })).toMatchObject({
    status: 'COMPLETED',
    version: 3,
  });
  const rows = await changesTable!.actual(db, 'a1');
  expect(rows.map((r) => [r.eventId, r.outOfOrder])).toEqual([
    ['e1', false],
    ['e2', true],
    ['e3', false],
  ]);

  // A live write between replay's read and its repair: the repair refuses, retriably.
  const expected = await docTable!.expected(db, 'a1');
  const actual = await docTable!.actual(db, 'a1');
  await run(ctx, event(4, 'RESCHEDULED', 4000, 3));
  await expect(docTable!.repair(db, 'a1', expected, actual)).rejects.toMatchObject({
    code: 'HANDLER_TRANSIENT',
  });
  expect((await db.collection<AppointmentDoc>(APPOINTMENTS).findOne({ _id: 'a1' }))!.status).toBe(
    'RESCHEDULED',
  );
});

test('a batch of one appointment’s events is read once and written once, each row on its own base', async () => {
  const { db, ctx } = await setup();
  const events = [
    event(1, 'SCHEDULED', 1000, 0),
    event(2, 'RESCHEDULED', 2000, 1),
    event(3, 'COMPLETED', 3000, 2),
  ];
  const outcomes = await runBatch(stage.handler, [...events, { ...events[1]!, offset: '3' }], ctx);
  expect(outcomes.map((o) => (o.kind === 'done' ? o.outcome : o.kind))).toEqual([
    'applied',
    'applied',
    'applied',
    'duplicate',
  ]);
  expect(await db.collection<AppointmentDoc>(APPOINTMENTS).findOne({ _id: 'a1' })).toMatchObject({
    status: 'COMPLETED',
    version: 3,
  });
  const rows = await db.collection(APPOINTMENT_CHANGES).find({}).sort({ occurredAt: 1 }).toArray();
  expect(rows.map((r) => [r._id, r.baseVersion])).toEqual([
    [eventKey('acme', 'e1'), 0],
    [eventKey('acme', 'e2'), 1],
    [eventKey('acme', 'e3'), 2],
  ]);
});

/** The event `event(n, ...)` makes, for another tenant's appointment `appointmentId`. */
function ofTenant(e: StageEvent<AppointmentEvent>, tenantId: string, appointmentId: string) {
  return { ...e, key: appointmentId, tenantId, value: { ...e.value, tenantId, appointmentId } };
}

test('two tenants reusing an event id both apply; within one tenant other content is EVENT_ID_REUSED', async () => {
  // Behaviour: a change row is keyed by (tenant, event id). Tenant B's event e1 is not a redelivery of
  // tenant A's e1, so both appointments get their row and document; tenant A sending e1 again for
  // another appointment is refused, naming the fields, and writes nothing.
  const { db, ctx } = await setup();
  const a = event(1, 'SCHEDULED', 1000, 0);
  const b = ofTenant(event(1, 'SCHEDULED', 1500, 1), 'other', 'b1');
  expect((await run(ctx, a)).outcome).toBe('applied');
  expect((await run(ctx, b)).outcome).toBe('applied');
  expect(await db.collection<AppointmentDoc>(APPOINTMENTS).findOne({ _id: 'b1' })).toMatchObject({
    tenantId: 'other',
    status: 'SCHEDULED',
    version: 1,
  });
  const rows = await db.collection(APPOINTMENT_CHANGES).find({}).sort({ tenantId: 1 }).toArray();
  expect(rows.map((r) => [r.tenantId, r.appointmentId, r.eventId])).toEqual([
    ['acme', 'a1', 'e1'],
    ['other', 'b1', 'e1'],
  ]);

  const reused = ofTenant(event(1, 'CANCELLED', 1000, 2), 'acme', 'a2');
  const [o] = await runBatch(stage.handler, [reused], ctx);
  expect(o).toMatchObject({ kind: 'failed', error: { code: 'EVENT_ID_REUSED', retriable: false } });
  const message = (o as { error: Error }).error.message;
  expect(message).toMatch(
    /appointmentId \(first "a1", now "a2"\), kind \(first "SCHEDULED", now "CANCELLED"\)/,
  );
  expect(await db.collection(APPOINTMENT_CHANGES).countDocuments()).toBe(2);
  expect(await db.collection(APPOINTMENTS).countDocuments({ _id: 'a2' as never })).toBe(0);
});
