// The appointments stage's pure step: from the appointment as read and the event, what to write and
// what to emit. The change row is the stored emission: it keeps the input record that made it, and only
// that record come again (its emission never became visible, see src/state/input-position.ts) emits
// the row again, the same record; any other copy of the event emits nothing. A re-send of the tenant's
// event id with other content is refused as EVENT_ID_REUSED.
import { KeyflowError } from '../errors';
import type { ArchivedEvent } from '../state/archive';
import { eventKey, refuseReusedId } from '../state/event-identity';
import { positionOf, sameRecord } from '../state/input-position';
import type { Decision, StageEvent } from '../topology/types';
import { reduce, type AppointmentState, type Reduction } from './reducer';
import type { AppointmentEvent } from './schemas';
import { changeRecord, type AppointmentDoc, type ChangeRow } from './tables';

export interface AppointmentRead {
  doc: AppointmentDoc | null;
  /** The change row of this (tenant, event id), when an earlier delivery got that far. */
  row: ChangeRow | null;
  readStartedAt: number;
}

export type RowWrite =
  | { mode: 'insert'; row: ChangeRow }
  /** Replaces a row decided against a state that has since moved on (guarded on its baseVersion). */
  | { mode: 'rewrite'; row: ChangeRow; priorBaseVersion: number | null };

export interface DocWrite {
  _id: string;
  state: AppointmentState;
  /** The version read; 0 when the appointment did not exist (the write then inserts it). */
  expectedVersion: number;
}

export type AppointmentPlan =
  | { kind: 'duplicate' }
  | {
      kind: 'apply';
      archive: ArchivedEvent<AppointmentEvent> | null;
      row: RowWrite | null;
      doc: DocWrite | null;
    };

export function stateOf(doc: AppointmentDoc): AppointmentState {
  const { tenantId, leadId, status, statusVersion, scheduledFor, scheduledForVersion, lastOccurredAt } = doc;
  return { tenantId, leadId, status, statusVersion, scheduledFor, scheduledForVersion, lastOccurredAt };
}

/** The event a change row records: on a redelivery the first application's content wins. */
export function eventOfRow(row: ChangeRow): AppointmentEvent {
  return {
    eventId: row.eventId,
    tenantId: row.tenantId,
    appointmentId: row.appointmentId,
    leadId: row.leadId,
    kind: row.kind,
    scheduledFor: row.scheduledFor ?? null,
    occurredAt: row.occurredAt,
    source: row.source,
  };
}

/** What makes an appointment event the event it is, besides its (tenant, event id). */
export const CONTENT_FIELDS = [
  'appointmentId',
  'leadId',
  'kind',
  'scheduledFor',
  'occurredAt',
  'source',
] as const satisfies readonly (keyof AppointmentEvent)[];

/** The _id of an event's change row and archive entry: its event id within its tenant. */
export const changeIdOf = (e: Pick<AppointmentEvent, 'tenantId' | 'eventId'>): string =>
  eventKey(e.tenantId, e.eventId);

export function rowOf(e: AppointmentEvent, r: Reduction, baseVersion: number | null): ChangeRow {
  return {
    _id: changeIdOf(e),
    appointmentId: e.appointmentId,
    eventId: e.eventId,
    tenantId: e.tenantId,
    leadId: e.leadId,
    source: e.source,
    kind: e.kind,
    scheduledFor: e.scheduledFor,
    occurredAt: e.occurredAt,
    before: r.before,
    after: r.after,
    outOfOrder: r.outOfOrder,
    baseVersion,
  };
}

export function decideAppointment(
  event: StageEvent<AppointmentEvent>,
  read: AppointmentRead,
  output: string,
): Decision<AppointmentPlan> {
  const e = event.value;
  // The envelope refuses such a record before the handler runs (the stage's entityKey); this pure step
  // refuses it too, so it holds whoever calls it.
  if (event.key !== e.appointmentId) {
    throw new KeyflowError(
      'KEY_MISMATCH',
      `event ${e.eventId} has key ${event.key} but appointmentId ${e.appointmentId}; the key must be the appointmentId`,
    );
  }
  const base = read.doc ? stateOf(read.doc) : null;
  const version = read.doc?.version ?? 0;
  const timing = { consumedAt: event.consumedAt, readStartedAt: read.readStartedAt };
  const emit = (row: ChangeRow) => [
    { topic: output, key: row.appointmentId, value: changeRecord(row), occurredAt: row.occurredAt },
  ];
  const docWrite = (r: Reduction): DocWrite | null =>
    r.changed ? { _id: e.appointmentId, state: r.state, expectedVersion: version } : null;

  if (read.row !== null) {
    // Only the same event is a redelivery: other content under the id is refused, never applied.
    refuseReusedId(e.tenantId, e.eventId, eventOfRow(read.row), e, CONTENT_FIELDS);
    const r = reduce(base, eventOfRow(read.row));
    // The row's own input record re-sends it; a row stored without one re-sends to any copy (the old rule).
    const stored = sameRecord(read.row.input, event) ? emit(read.row) : [];
    // The document already holds the event (the reducer is a join): a duplicate, nothing to write.
    if (!r.changed) return { plan: { kind: 'duplicate' }, emit: stored, outOfOrder: false };
    // An earlier attempt wrote the row and stopped before the document. If the document is still at
    // the row's base, the row is right and only the document is missing; if another writer moved it
    // meanwhile, the row (never emitted: emission follows a complete write) is decided again, and is
    // this record's to emit.
    if (read.row.baseVersion === version) {
      return {
        plan: { kind: 'apply', archive: null, row: null, doc: docWrite(r) },
        emit: stored,
        outOfOrder: stored.length > 0 && read.row.outOfOrder,
      };
    }
    const row = { ...rowOf(eventOfRow(read.row), r, version), input: positionOf(event), ...timing };
    return {
      plan: {
        kind: 'apply',
        archive: null,
        row: { mode: 'rewrite', row, priorBaseVersion: read.row.baseVersion },
        doc: docWrite(r),
      },
      emit: emit(row),
      outOfOrder: row.outOfOrder,
    };
  }

  const r = reduce(base, e);
  const row = { ...rowOf(e, r, version), input: positionOf(event), ...timing };
  const archived: ArchivedEvent<AppointmentEvent> = {
    _id: changeIdOf(e),
    eventId: e.eventId,
    entityId: e.appointmentId,
    tenantId: e.tenantId,
    occurredAt: e.occurredAt,
    arrivedAt: event.consumedAt,
    topic: event.topic,
    partition: event.partition,
    offset: Number(event.offset),
    value: e,
  };
  return {
    plan: { kind: 'apply', archive: archived, row: { mode: 'insert', row }, doc: docWrite(r) },
    emit: emit(row),
    outOfOrder: r.outOfOrder,
  };
}
