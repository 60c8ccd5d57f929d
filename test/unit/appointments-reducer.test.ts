// The RSAppointment reducer: the same state in any arrival order, no effect from a repeat, a late event
// never overwriting newer state, ties broken by eventId, the latest non-null scheduledFor kept.
import { fold, reduce, type AppointmentState } from '../../src/appointments/reducer';
import type { AppointmentEvent, AppointmentKind } from '../../src/appointments/schemas';
import { KeyflowError } from '../../src/errors';

function ev(
  eventId: string,
  kind: AppointmentKind,
  occurredAt: number,
  scheduledFor: number | null = null,
  extra: Partial<AppointmentEvent> = {},
): AppointmentEvent {
  return {
    eventId,
    tenantId: 't1',
    appointmentId: 'a1',
    leadId: 'l1',
    kind,
    scheduledFor,
    occurredAt,
    source: 'crm',
    ...extra,
  };
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

const lifecycle = [
  ev('e1', 'SCHEDULED', 1000, 50_000, { leadId: 'l1' }),
  ev('e2', 'RESCHEDULED', 2000, 60_000, { leadId: 'l2' }),
  ev('e3', 'CANCELLED', 3000, null, { leadId: 'l3' }),
  ev('e4', 'RESCHEDULED', 2500, 70_000),
  ev('e5', 'COMPLETED', 3000, null),
];

test('every arrival order of the same events gives the same appointment', () => {
  const expected = fold(lifecycle);
  expect(expected).toEqual({
    tenantId: 't1',
    // e5 wins the tie with e3 at 3000 on eventId, and brings its lead along with the status.
    leadId: 'l1',
    status: 'COMPLETED',
    statusVersion: { occurredAt: 3000, eventId: 'e5' },
    scheduledFor: 70_000,
    scheduledForVersion: { occurredAt: 2500, eventId: 'e4' },
    lastOccurredAt: 3000,
  });
  const orders = permutations(lifecycle);
  expect(orders).toHaveLength(120);
  for (const order of orders) expect(fold(order)).toEqual(expected);
});

test('applying an event a second time changes nothing, wherever the repeat comes', () => {
  const once = fold(lifecycle);
  for (const repeat of lifecycle) {
    const r = reduce(once, repeat);
    expect(r.changed).toBe(false);
    expect(r.state).toEqual(once);
    expect(r.after).toEqual(r.before);
  }
  expect(fold([...lifecycle, ...lifecycle].reverse())).toEqual(once);
});

test('a late event never overwrites newer state and is flagged out of order', () => {
  const newer = fold([ev('e1', 'SCHEDULED', 1000, 50_000), ev('e3', 'RESCHEDULED', 3000, 80_000)])!;
  const late = reduce(newer, ev('e2', 'CANCELLED', 2000, 60_000));
  expect(late.outOfOrder).toBe(true);
  expect(late.changed).toBe(false);
  expect(late.state).toEqual(newer);
  expect(late.before).toEqual({ status: 'RESCHEDULED', scheduledFor: 80_000 });
  expect(late.after).toEqual(late.before);
});

test('a late event still sets a field nothing newer has set', () => {
  // The newest event carries no scheduledFor, so the late one's is the latest non-null one.
  const newer = fold([ev('e1', 'SCHEDULED', 1000, null), ev('e3', 'CANCELLED', 3000, null)])!;
  const late = reduce(newer, ev('e2', 'RESCHEDULED', 2000, 60_000));
  expect(late.outOfOrder).toBe(true);
  expect(late.changed).toBe(true);
  expect(late.after).toEqual({ status: 'CANCELLED', scheduledFor: 60_000 });
});

test('an event in order is not flagged, and neither is one at the same occurredAt', () => {
  const s = fold([ev('e1', 'SCHEDULED', 1000, 50_000)]);
  expect(reduce(s, ev('e2', 'RESCHEDULED', 2000, 60_000)).outOfOrder).toBe(false);
  expect(reduce(s, ev('e0', 'CANCELLED', 1000)).outOfOrder).toBe(false);
  expect(reduce(null, ev('e1', 'SCHEDULED', 1000)).outOfOrder).toBe(false);
});

test('at the same occurredAt the higher eventId decides the status, in either order', () => {
  const a = ev('evt-a', 'CANCELLED', 5000);
  const b = ev('evt-b', 'COMPLETED', 5000);
  expect(fold([a, b])!.status).toBe('COMPLETED');
  expect(fold([b, a])!.status).toBe('COMPLETED');
  expect(reduce(fold([b]), a).changed).toBe(false);
});

test('scheduledFor keeps the latest non-null value; a null never erases it', () => {
  const s = fold([
    ev('e1', 'SCHEDULED', 1000, 50_000),
    ev('e2', 'RESCHEDULED', 2000, 60_000),
    ev('e3', 'CANCELLED', 3000, null),
  ])!;
  expect(s.scheduledFor).toBe(60_000);
  expect(s.status).toBe('CANCELLED');
  expect(fold([ev('e1', 'SCHEDULED', 1000, null)])!.scheduledFor).toBeNull();
});

test('the first event creates the appointment: no state before it', () => {
  const r = reduce(null, ev('e1', 'SCHEDULED', 1000, 50_000));
  expect(r.before).toBeNull();
  expect(r.after).toEqual({ status: 'SCHEDULED', scheduledFor: 50_000 });
  expect(r.changed).toBe(true);
});

test('the reducer never mutates the state it is given', () => {
  const s: AppointmentState = fold([ev('e1', 'SCHEDULED', 1000, 50_000)])!;
  const copy = structuredClone(s);
  reduce(s, ev('e2', 'RESCHEDULED', 2000, 60_000));
  expect(s).toEqual(copy);
});

test('an event naming another tenant for a known appointment is refused, not merged', () => {
  const s = fold([ev('e1', 'SCHEDULED', 1000)]);
  const err = (() => {
    try {
      reduce(s, ev('e2', 'CANCELLED', 2000, null, { tenantId: 't2' }));
    } catch (e) {
      return e;
    }
  })();
  expect(err).toBeInstanceOf(KeyflowError);
  expect(err).toMatchObject({ code: 'VALIDATION_FAILED', retriable: false });
});
