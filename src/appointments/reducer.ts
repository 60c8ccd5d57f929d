// The pure reducer of RSAppointment: the live stage and replay both call it, so it alone defines what
// an appointment's state is. Each field keeps the version (occurredAt, eventId) of the event that set
// it and only a higher version replaces it — a join, so any arrival order and any repeat give one result.
import { KeyflowError } from '../errors';
import type { AppointmentEvent, AppointmentKind, AppointmentSnapshot } from './schemas';

/** Orders events of one appointment: by occurredAt, ties broken by eventId. */
export interface EventVersion {
  occurredAt: number;
  eventId: string;
}

export interface AppointmentState {
  tenantId: string;
  /** The lead of the latest event (it moves with status). */
  leadId: string;
  /** The kind of the latest event. */
  status: AppointmentKind;
  statusVersion: EventVersion;
  /** The latest non-null scheduledFor; null until an event carries one. */
  scheduledFor: number | null;
  scheduledForVersion: EventVersion | null;
  lastOccurredAt: number;
}

export interface Reduction {
  state: AppointmentState;
  /** False when the event adds nothing (a repeat, or older than every field it could set). */
  changed: boolean;
  /** An event with a later occurredAt had already been applied. */
  outOfOrder: boolean;
  before: AppointmentSnapshot | null;
  after: AppointmentSnapshot;
}

export function compareVersions(a: EventVersion, b: EventVersion): number {
  if (a.occurredAt !== b.occurredAt) return a.occurredAt < b.occurredAt ? -1 : 1;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

export function snapshotOf(s: AppointmentState): AppointmentSnapshot {
  return { status: s.status, scheduledFor: s.scheduledFor };
}

/** Applies one event to an appointment's state (null: not seen yet). Never mutates its input. */
export function reduce(state: AppointmentState | null, e: AppointmentEvent): Reduction {
  const v: EventVersion = { occurredAt: e.occurredAt, eventId: e.eventId };
  if (state === null) {
    const next: AppointmentState = {
      tenantId: e.tenantId,
      leadId: e.leadId,
      status: e.kind,
      statusVersion: v,
      scheduledFor: e.scheduledFor,
      scheduledForVersion: e.scheduledFor === null ? null : v,
      lastOccurredAt: e.occurredAt,
    };
    return { state: next, changed: true, outOfOrder: false, before: null, after: snapshotOf(next) };
  }
  if (e.tenantId !== state.tenantId) {
    // An appointment id reused across tenants would merge two tenants' data: refuse, never guess.
    throw new KeyflowError(
      'VALIDATION_FAILED',
      `event ${e.eventId} names tenant ${e.tenantId} for appointment ${e.appointmentId}, which belongs to tenant ${state.tenantId}`,
      { retriable: false },
    );
  }
  const next: AppointmentState = { ...state };
  if (compareVersions(v, state.statusVersion) > 0) {
    next.status = e.kind;
    next.leadId = e.leadId;
    next.statusVersion = v;
  }
  const scheduledNewer =
    state.scheduledForVersion === null || compareVersions(v, state.scheduledForVersion) > 0;
  if (e.scheduledFor !== null && scheduledNewer) {
    next.scheduledFor = e.scheduledFor;
    next.scheduledForVersion = v;
  }
  next.lastOccurredAt = Math.max(state.lastOccurredAt, e.occurredAt);
  const changed =
    next.statusVersion !== state.statusVersion ||
    next.scheduledForVersion !== state.scheduledForVersion ||
    next.lastOccurredAt !== state.lastOccurredAt;
  return {
    state: next,
    changed,
    outOfOrder: state.lastOccurredAt > e.occurredAt,
    before: snapshotOf(state),
    after: snapshotOf(next),
  };
}

/** The state after all of an appointment's events, whatever their order (null for none). */
export function fold(events: Iterable<AppointmentEvent>): AppointmentState | null {
  let state: AppointmentState | null = null;
  for (const e of events) state = reduce(state, e).state;
  return state;
}
