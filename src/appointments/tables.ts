// The appointments tables: RSAppointment (one document per appointment), RSAppointmentChanges (one row
// per distinct event applied) and the event archive, with the indexes and the queries run on them.
import type { Db } from 'mongodb';
import type { DeclaredQuery } from '../runtime/dataflow';
import { archive, archiveIndexes, type ArchivedEvent } from '../state/archive';
import { guardIndex } from '../state/bulk';
import { historyIndexes, historyQueries } from '../state/entity-history';
import { eventKey } from '../state/event-identity';
import type { InputPosition } from '../state/input-position';
import type { CollectionIndexes } from '../state/mongo';
import type { AppointmentState } from './reducer';
import type { AppointmentChange, AppointmentEvent, AppointmentKind, AppointmentSnapshot } from './schemas';

export const APPOINTMENTS = 'RSAppointment';
export const APPOINTMENT_CHANGES = 'RSAppointmentChanges';
export const APPOINTMENT_EVENTS = 'RSAppointmentEvents';

export interface AppointmentDoc extends AppointmentState {
  /** The appointmentId. */
  _id: string;
  /** Incremented by every write; a write is conditional on the version it read. */
  version: number;
}

export interface ChangeRow {
  /** eventKey(tenantId, eventId): a duplicate delivery finds its row and adds none. */
  _id: string;
  appointmentId: string;
  eventId: string;
  tenantId: string;
  leadId: string;
  source: string;
  kind: AppointmentKind;
  /** The event's own scheduledFor (the state's is in before/after). */
  scheduledFor: number | null;
  occurredAt: number;
  before: AppointmentSnapshot | null;
  after: AppointmentSnapshot;
  outOfOrder: boolean;
  /** The RSAppointment version this row was decided against (null when replay wrote the row). */
  baseVersion: number | null;
  /**
   * The input record that made the row, the only one that emits it again. Absent on rows written before
   * it was stored, and on rows replay inserted: any copy of their event emits them (at-least-once).
   */
  input?: InputPosition;
  consumedAt?: number;
  readStartedAt?: number;
  writeStartedAt?: number;
}

export const appointments = (db: Db) => db.collection<AppointmentDoc>(APPOINTMENTS);
export const changes = (db: Db) => db.collection<ChangeRow>(APPOINTMENT_CHANGES);
export const appointmentEvents = (db: Db) => archive<AppointmentEvent>(db, APPOINTMENT_EVENTS);
export type ArchivedAppointmentEvent = ArchivedEvent<AppointmentEvent>;

/** The change record emitted for a row: rebuilt from the row, so a redelivery emits the same bytes. */
export function changeRecord(row: ChangeRow): AppointmentChange {
  return {
    appointmentId: row.appointmentId,
    tenantId: row.tenantId,
    eventId: row.eventId,
    occurredAt: row.occurredAt,
    outOfOrder: row.outOfOrder,
    before: row.before && { status: row.before.status, scheduledFor: row.before.scheduledFor ?? null },
    after: { status: row.after.status, scheduledFor: row.after.scheduledFor ?? null },
  };
}

export const APPOINTMENT_INDEXES: CollectionIndexes[] = [
  // Looked up by _id (live reads), by _id and version (the guarded write), by _id and tenant (the route).
  { collection: APPOINTMENTS, indexes: [guardIndex('version'), guardIndex('tenantId')] },
  {
    collection: APPOINTMENT_CHANGES,
    indexes: [
      { key: { appointmentId: 1, occurredAt: 1, eventId: 1 }, name: 'appointment_occurred' },
      { key: { tenantId: 1, outOfOrder: 1, occurredAt: 1, eventId: 1 }, name: 'tenant_ooo_occurred' },
      guardIndex('baseVersion'),
    ],
  },
  {
    collection: APPOINTMENT_EVENTS,
    indexes: [
      ...archiveIndexes(APPOINTMENT_EVENTS).indexes,
      // Replay of the temporal table walks an entity's events in arrival order.
      { key: { entityId: 1, arrivedAt: 1, offset: 1 }, name: 'entity_arrived' },
    ],
  },
  historyIndexes(APPOINTMENT_EVENTS),
];

export const APPOINTMENT_QUERIES: DeclaredQuery[] = [
  { name: 'appointments by ids', hot: true, collection: APPOINTMENTS, filter: { _id: { $in: ['appt-1'] } } },
  {
    name: 'appointment guarded write',
    hot: true,
    collection: APPOINTMENTS,
    filter: { _id: 'appt-1', version: 3 },
  },
  {
    name: 'appointment of a tenant',
    collection: APPOINTMENTS,
    filter: { _id: 'appt-1', tenantId: 'acme' },
  },
  {
    name: 'appointment changes by events',
    hot: true,
    collection: APPOINTMENT_CHANGES,
    filter: { _id: { $in: [eventKey('acme', 'evt-1'), eventKey('acme', 'evt-2')] } },
  },
  {
    name: 'appointment change guarded rewrite',
    hot: true,
    collection: APPOINTMENT_CHANGES,
    filter: { _id: eventKey('acme', 'evt-1'), baseVersion: 2 },
  },
  {
    name: 'appointment change history',
    collection: APPOINTMENT_CHANGES,
    filter: { appointmentId: 'appt-1' },
    sort: { occurredAt: 1, eventId: 1 },
  },
  {
    name: 'out-of-order changes of a tenant',
    collection: APPOINTMENT_CHANGES,
    filter: { tenantId: 'acme', outOfOrder: true, occurredAt: { $gte: 0, $lt: 2_000_000_000_000 } },
    sort: { occurredAt: 1, eventId: 1 },
  },
  ...historyQueries('appointments', APPOINTMENT_EVENTS, 'appt-1'),
  {
    name: 'archived appointment events by history (replay)',
    collection: APPOINTMENT_EVENTS,
    filter: { _id: { $in: [eventKey('acme', 'evt-1')] } },
  },
];
