// Replay of the appointments tables from the event archive, with the live reducer: RSAppointment folds
// an appointment's events in occurredAt order; RSAppointmentChanges re-applies them in arrival order.
import type { Db } from 'mongodb';
import { KeyflowError } from '../errors';
import { groupByEntity, type ReplayTable, type Row } from '../replay/types';
import {
  eventsByHistory,
  findByIds,
  historyCount,
  prepareHistory,
  sampleEntities,
  touchedEntities,
  walkEntities,
  historiesByIds,
} from '../replay/by-history';
import { rowOf, stateOf } from './decide';
import { fold, reduce, type AppointmentState } from './reducer';
import type { AppointmentEvent } from './schemas';
import { writeGuarded, type GuardedWrite } from '../state/bulk';
import { concurrentUpdate } from '../state/conflicts';
import {
  APPOINTMENT_CHANGES,
  APPOINTMENT_EVENTS,
  APPOINTMENTS,
  appointments,
  changes,
  type AppointmentDoc,
  type ChangeRow,
} from './tables';

const DOC_FIELDS = [
  'tenantId',
  'leadId',
  'status',
  'statusVersion',
  'scheduledFor',
  'scheduledForVersion',
  'lastOccurredAt',
] satisfies (keyof AppointmentState)[];

const CHANGE_FIELDS = [
  'appointmentId',
  'eventId',
  'tenantId',
  'leadId',
  'source',
  'kind',
  'scheduledFor',
  'occurredAt',
  'before',
  'after',
  'outOfOrder',
] satisfies (keyof ChangeRow)[];

function conflict(table: string, id: string): KeyflowError {
  return concurrentUpdate(`${table} (during repair)`, id);
}

// Every read goes through the appointment's history by _id (state/entity-history.ts): its events by
// their archive ids, its change rows by the same ids, its document by the appointment id.
const eventsOfMany = (db: Db, ids: readonly string[], order: 'occurred' | 'arrival' = 'occurred') =>
  eventsByHistory<AppointmentEvent>(db, APPOINTMENT_EVENTS, ids, order);

async function entityIds(db: Db, after: string | undefined, batch: number): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of walkEntities(db, APPOINTMENT_EVENTS, after, undefined)) {
    ids.push(id);
    if (ids.length >= batch) break;
  }
  return ids;
}

/** One history document per appointment with events: its count is the number of entities. */
const estimateEntities = (db: Db) => historyCount(db, APPOINTMENT_EVENTS);

const walking: Pick<
  ReplayTable,
  'entityIds' | 'estimateEntities' | 'walkIds' | 'touchedIds' | 'sampleIds' | 'prepare'
> = {
  entityIds,
  estimateEntities,
  walkIds: (db, after, to) => walkEntities(db, APPOINTMENT_EVENTS, after, to),
  touchedIds: (db, since) => touchedEntities(db, APPOINTMENT_EVENTS, since),
  sampleIds: (db, n) => sampleEntities(db, APPOINTMENT_EVENTS, n),
  async prepare(db) {
    await prepareHistory(db, APPOINTMENT_EVENTS);
  },
};

export const appointmentReplay: ReplayTable = {
  table: APPOINTMENTS,
  kind: 'derived',
  entity: 'appointmentId',
  fields: DOC_FIELDS,
  async expected(db, id) {
    const state = fold((await eventsOfMany(db, [id])).events.get(id)!.map((a) => a.value));
    return state ? [{ _id: id, ...state }] : [];
  },
  async actual(db, id) {
    const doc = await appointments(db).findOne({ _id: id });
    return doc ? [doc] : [];
  },
  async expectedMany(db, ids) {
    const byId = (await eventsOfMany(db, ids)).events;
    return new Map(
      [...byId].map(([id, list]) => {
        const state = fold(list.map((a) => a.value));
        return [id, state ? [{ _id: id, ...state }] : []];
      }),
    );
  },
  async actualMany(db, ids) {
    const docs = await findByIds(appointments(db), ids);
    return groupByEntity(ids, docs as unknown as Row[], (d) => String(d._id));
  },
  async repair(db, id, expected, actual) {
    const exp = expected[0] as AppointmentDoc | undefined;
    const act = actual[0] as AppointmentDoc | undefined;
    // Conditional on the version read, like a live write: a live update in between makes it retry.
    if (exp) {
      const state = stateOf(exp);
      const [failure] = await writeGuarded(
        appointments(db),
        [
          act
            ? {
                index: 0,
                _id: id,
                guard: { version: act.version },
                update: { $set: state, $inc: { version: 1 } },
              }
            : { index: 0, _id: id, insert: { _id: id, ...state, version: 1 } },
        ],
        'appointment',
      );
      if (failure) throw failure.error;
    } else if (act) {
      const res = await appointments(db).deleteOne({ _id: id, version: act.version });
      if (res.deletedCount !== 1) throw conflict(APPOINTMENTS, id);
    }
  },
  ...walking,
};

/** The temporal table's rows: the entity's events folded in the order they arrived. */
function changeRowsOf(archived: readonly { value: AppointmentEvent }[]): Row[] {
  const rows: Row[] = [];
  let state: AppointmentState | null = null;
  for (const { value } of archived) {
    const r = reduce(state, value);
    state = r.state;
    rows.push({ ...rowOf(value, r, null) });
  }
  return rows;
}

export const appointmentChangesReplay: ReplayTable = {
  table: APPOINTMENT_CHANGES,
  kind: 'temporal',
  entity: 'appointmentId',
  fields: CHANGE_FIELDS,
  async expected(db, id) {
    return changeRowsOf((await eventsOfMany(db, [id], 'arrival')).events.get(id)!);
  },
  async actual(db, id) {
    return (await this.actualMany!(db, [id])).get(id)!;
  },
  async expectedMany(db, ids) {
    const byId = (await eventsOfMany(db, ids, 'arrival')).events;
    return new Map([...byId].map(([id, list]) => [id, changeRowsOf(list)]));
  },
  // A change row's _id is its event's archive id, so the history lists the rows too.
  async actualMany(db, ids) {
    const histories = await historiesByIds(db, APPOINTMENT_EVENTS, ids);
    const rows = await findByIds(
      changes(db),
      histories.flatMap((h) => h.events),
    );
    rows.sort(
      (a, b) => a.occurredAt - b.occurredAt || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0),
    );
    return groupByEntity(ids, rows as unknown as Row[], (r) => String(r.appointmentId));
  },
  async repair(db, _entityId, expected, actual) {
    const actualById = new Map(actual.map((r) => [String(r._id), r as unknown as ChangeRow]));
    const writes: GuardedWrite<ChangeRow>[] = [];
    for (const exp of expected as unknown as ChangeRow[]) {
      const act = actualById.get(exp._id);
      actualById.delete(exp._id);
      const set = Object.fromEntries(CHANGE_FIELDS.map((f) => [f, exp[f]]));
      // A row the live stage inserts meanwhile makes the insert fail as a concurrent update: the retry
      // re-reads it (it was decided against the live state). A rewrite is guarded on the row's
      // baseVersion, which only a live rewrite of the row changes.
      writes.push(
        act
          ? {
              index: writes.length,
              _id: exp._id,
              guard: { baseVersion: act.baseVersion ?? null },
              update: { $set: set },
            }
          : {
              index: writes.length,
              _id: exp._id,
              insert: { ...set, _id: exp._id, baseVersion: null } as ChangeRow,
            },
      );
    }
    const [failed] = await writeGuarded(changes(db), writes, `${APPOINTMENT_CHANGES} (during repair)`);
    if (failed) throw failed.error;
    // Rows whose event is not archived cannot come from the live stage (it archives first).
    for (const act of actualById.values()) {
      const res = await changes(db).deleteOne({ _id: act._id, baseVersion: act.baseVersion ?? null });
      if (res.deletedCount !== 1) throw conflict(APPOINTMENT_CHANGES, act._id);
    }
  },
  ...walking,
};
