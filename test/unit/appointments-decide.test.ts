// The appointments stage's pure decision: a redelivery of the input record that made a change row
// emits exactly what it first emitted, any other copy of the event emits nothing, and a delivery that
// finds its writes half done plans only what is missing.
import { decideAppointment, type AppointmentPlan, type AppointmentRead } from '../../src/appointments/decide';
import type { AppointmentEvent } from '../../src/appointments/schemas';
import type { AppointmentDoc, ChangeRow } from '../../src/appointments/tables';
import { eventKey } from '../../src/state/event-identity';
import type { StageEvent } from '../../src/topology/types';

const OUT = 'changes.appointments.v1';

function event(
  value: Partial<AppointmentEvent> & { eventId: string; occurredAt: number },
): StageEvent<AppointmentEvent> {
  const v: AppointmentEvent = {
    tenantId: 't1',
    appointmentId: 'a1',
    leadId: 'l1',
    kind: 'RESCHEDULED',
    scheduledFor: 90_000,
    source: 'crm',
    ...value,
  };
  return {
    key: v.appointmentId,
    value: v,
    eventId: v.eventId,
    occurredAt: v.occurredAt,
    tenantId: v.tenantId,
    traceId: 'f'.repeat(32),
    topic: 'external.appointments.v1',
    partition: 0,
    offset: '7',
    attempt: 1,
    headers: {},
    consumedAt: 10,
  };
}

const doc: AppointmentDoc = {
  _id: 'a1',
  tenantId: 't1',
  leadId: 'l1',
  status: 'SCHEDULED',
  statusVersion: { occurredAt: 1000, eventId: 'e1' },
  scheduledFor: 50_000,
  scheduledForVersion: { occurredAt: 1000, eventId: 'e1' },
  lastOccurredAt: 1000,
  version: 1,
};

const read = (d: AppointmentDoc | null, row: ChangeRow | null): AppointmentRead => ({
  doc: d,
  row,
  readStartedAt: 11,
});

function applied(plan: AppointmentPlan | null) {
  if (plan?.kind !== 'apply') throw new Error(`expected an apply plan, got ${JSON.stringify(plan)}`);
  return plan;
}

test('a new event plans archive, change row and a guarded document write, and emits one change', () => {
  const d = decideAppointment(event({ eventId: 'e2', occurredAt: 2000 }), read(doc, null), OUT);
  const plan = applied(d.plan);
  // Both are keyed by the event id within its tenant.
  const _id = eventKey('t1', 'e2');
  expect(plan.archive).toMatchObject({ _id, eventId: 'e2', entityId: 'a1', arrivedAt: 10, offset: 7 });
  expect(plan.row).toMatchObject({
    mode: 'insert',
    row: {
      _id,
      baseVersion: 1,
      outOfOrder: false,
      input: { topic: 'external.appointments.v1', offset: '7' },
    },
  });
  expect(plan.doc).toMatchObject({ _id: 'a1', expectedVersion: 1, state: { status: 'RESCHEDULED' } });
  expect(d.emit).toEqual([
    {
      topic: OUT,
      key: 'a1',
      occurredAt: 2000,
      value: {
        appointmentId: 'a1',
        tenantId: 't1',
        eventId: 'e2',
        occurredAt: 2000,
        outOfOrder: false,
        before: { status: 'SCHEDULED', scheduledFor: 50_000 },
        after: { status: 'RESCHEDULED', scheduledFor: 90_000 },
      },
    },
  ]);
});

test('a redelivery after a complete write writes nothing and emits the same record again', () => {
  const first = decideAppointment(event({ eventId: 'e2', occurredAt: 2000 }), read(doc, null), OUT);
  const plan = applied(first.plan);
  const written: AppointmentDoc = { _id: 'a1', ...plan.doc!.state, version: 2 };
  const again = decideAppointment(
    event({ eventId: 'e2', occurredAt: 2000 }),
    read(written, { ...plan.row!.row, writeStartedAt: 12 }),
    OUT,
  );
  expect(again.plan).toEqual({ kind: 'duplicate' });
  expect(JSON.stringify(again.emit)).toBe(JSON.stringify(first.emit));
});

test('a re-send at another offset, near or far, writes nothing and emits nothing', () => {
  const first = decideAppointment(event({ eventId: 'e2', occurredAt: 2000 }), read(doc, null), OUT);
  const plan = applied(first.plan);
  const written: AppointmentDoc = { _id: 'a1', ...plan.doc!.state, version: 2 };
  for (const offset of ['8', '10007']) {
    const resend = { ...event({ eventId: 'e2', occurredAt: 2000 }), offset };
    const d = decideAppointment(resend, read(written, plan.row!.row), OUT);
    expect(d).toMatchObject({ plan: { kind: 'duplicate' }, emit: [] });
  }
  // A row written before inputs were stored emits to any copy, as every duplicate did then.
  const { input: _none, ...legacy } = plan.row!.row;
  const old = decideAppointment(
    { ...event({ eventId: 'e2', occurredAt: 2000 }), offset: '8' },
    read(written, legacy),
    OUT,
  );
  expect(old.emit).toEqual(first.emit);
  // The re-drive of the letter written for offset 7 (its change could not be built) stands for it.
  const redriven = {
    ...event({ eventId: 'e2', occurredAt: 2000 }),
    offset: '55',
    redrive: { letter: 'appointments:external.appointments.v1:0:7' },
  };
  expect(decideAppointment(redriven, read(written, plan.row!.row), OUT).emit).toEqual(first.emit);
});

test('a re-send of the id with other content is refused as EVENT_ID_REUSED, naming the fields', () => {
  const first = decideAppointment(event({ eventId: 'e2', occurredAt: 2000 }), read(doc, null), OUT);
  const plan = applied(first.plan);
  const written: AppointmentDoc = { _id: 'a1', ...plan.doc!.state, version: 2 };
  const resend = event({ eventId: 'e2', occurredAt: 9000, kind: 'NO_SHOW' });
  expect(() => decideAppointment(resend, read(written, plan.row!.row), OUT)).toThrow(
    expect.objectContaining({
      code: 'EVENT_ID_REUSED',
      retriable: false,
      details: { tenantId: 't1', eventId: 'e2', fields: ['kind', 'occurredAt'] },
    }),
  );
  // The same content, with other transport details (offset, attempt), is still a duplicate.
  const same = { ...event({ eventId: 'e2', occurredAt: 2000 }), offset: '99', attempt: 3 };
  expect(decideAppointment(same, read(written, plan.row!.row), OUT).plan).toEqual({ kind: 'duplicate' });
});

test('a row written before a crash, with the document untouched, plans only the document', () => {
  const first = decideAppointment(event({ eventId: 'e2', occurredAt: 2000 }), read(doc, null), OUT);
  const plan = applied(first.plan);
  const again = decideAppointment(event({ eventId: 'e2', occurredAt: 2000 }), read(doc, plan.row!.row), OUT);
  const finish = applied(again.plan);
  expect(finish.archive).toBeNull();
  expect(finish.row).toBeNull();
  expect(finish.doc).toEqual(plan.doc);
  expect(again.emit).toEqual(first.emit);
  // Another copy of the event finishes the document too, but leaves the emission to offset 7.
  const copy = { ...event({ eventId: 'e2', occurredAt: 2000 }), offset: '9' };
  const other = decideAppointment(copy, read(doc, plan.row!.row), OUT);
  expect(applied(other.plan).doc).toEqual(plan.doc);
  expect(other.emit).toEqual([]);
});

test('a row whose document moved on without it is decided again against the current document', () => {
  const first = decideAppointment(event({ eventId: 'e2', occurredAt: 2000 }), read(doc, null), OUT);
  const row = applied(first.plan).row!.row;
  // Another writer applied a newer event e3 in between; e2 never reached the document.
  const moved: AppointmentDoc = {
    ...doc,
    status: 'CANCELLED',
    statusVersion: { occurredAt: 3000, eventId: 'e3' },
    lastOccurredAt: 3000,
    version: 2,
  };
  const again = decideAppointment(event({ eventId: 'e2', occurredAt: 2000 }), read(moved, row), OUT);
  const plan = applied(again.plan);
  expect(plan.row).toMatchObject({
    mode: 'rewrite',
    priorBaseVersion: 1,
    row: { baseVersion: 2, outOfOrder: true },
  });
  expect(plan.doc).toMatchObject({
    expectedVersion: 2,
    state: { status: 'CANCELLED', scheduledFor: 90_000 },
  });
  expect(again.outOfOrder).toBe(true);
  // Decided again, the row is the deciding record's to emit: a copy at another offset stores itself.
  const copy = { ...event({ eventId: 'e2', occurredAt: 2000 }), offset: '12' };
  const redecided = decideAppointment(copy, read(moved, row), OUT);
  expect(applied(redecided.plan).row!.row.input).toEqual({
    topic: 'external.appointments.v1',
    partition: 0,
    offset: '12',
  });
  expect(redecided.emit).toHaveLength(1);
});

test('a late event that changes nothing still gets its change row, flagged, and no document write', () => {
  const newer: AppointmentDoc = {
    ...doc,
    statusVersion: { occurredAt: 5000, eventId: 'e9' },
    lastOccurredAt: 5000,
  };
  const d = decideAppointment(
    event({ eventId: 'e2', occurredAt: 2000, kind: 'CANCELLED', scheduledFor: null }),
    read(newer, null),
    OUT,
  );
  const plan = applied(d.plan);
  expect(plan.doc).toBeNull();
  expect(plan.row!.row).toMatchObject({ outOfOrder: true, before: plan.row!.row.after });
  expect(d.outOfOrder).toBe(true);
});

test('a key that is not the appointmentId is refused without retry', () => {
  const e = { ...event({ eventId: 'e2', occurredAt: 2000 }), key: 'other' };
  expect(() => decideAppointment(e, read(doc, null), OUT)).toThrow(
    expect.objectContaining({ code: 'KEY_MISMATCH', retriable: false }),
  );
});
