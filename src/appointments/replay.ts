// Replay of the appointments tables from the event archive, with the live reducer: RSAppointment folds
// an appointment's events in occurredAt order; RSAppointmentChanges re-applies them in arrival order.
import type { Db } from 'mongodb';
import { KeyflowError } from '../errors';
import { groupByEntity, type ReplayTable, type Row } from '../replay/types';
import { entityIdsAfter, eventsOf, eventsOfMany } from '../state/archive';
import { rowOf, stateOf } from './decide';
import { fold, reduce, type AppointmentState } from './reducer';
import type { AppointmentEvent } from './schemas';
import { writeGuarded } from '../state/bulk';
import { concurrentUpdate } from '../state/conflicts';
import {
  APPOINTMENT_CHANGES,
  APPOINTMENTS,
  appointmentEvents,
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

const entityIds = (db: Db, after: string | undefined, batch: number) =>
  entityIdsAfter(appointmentEvents(db), after, batch);

/** One RSAppointment document per appointment: its count is the number of entities. */
const estimateEntities = (db: Db) => appointments(db).estimatedDocumentCount();

export const appointmentReplay: ReplayTable = {
  table: APPOINTMENTS,
  kind: 'derived',
  entity: 'appointmentId',
  fields: DOC_FIELDS,
  async expected(db, id) {
    const state = fold((await eventsOf(appointmentEvents(db), id)).map((a) => a.value));
    return state ? [{ _id: id, ...state }] : [];
  },
  async actual(db, id) {
    const doc = await appointments(db).findOne({ _id: id });
    return doc ? [doc] : [];
  },
  async expectedMany(db, ids) {
    const byId = groupByEntity(ids, await eventsOfMany(appointmentEvents(db), ids), (a) => a.entityId);
    return new Map(
      [...byId].map(([id, list]) => {
        const state = fold(list.map((a) => a.value));
        return [id, state ? [{ _id: id, ...state }] : []];
      }),
    );
  },
  async actualMany(db, ids) {
    const docs = await appointments(db)
      .find({ _id: { $in: [...ids] } })
      .toArray();
    return groupByEntity(ids, docs as Row[], (d) => String(d._id));
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
  entityIds,
  estimateEntities,
};

/** The temporal table's rows: the entity's events folded in the order they arrived. */
const ARRIVAL = { arrivedAt: 1, offset: 1 } as const;
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
    return changeRowsOf(await eventsOfMany(appointmentEvents(db), [id], ARRIVAL));
  },
  async actual(db, id) {
    return changes(db).find({ appointmentId: id }).sort({ occurredAt: 1, eventId: 1 }).toArray();
  },
  async expectedMany(db, ids) {
    const byId = groupByEntity(
      ids,
      await eventsOfMany(appointmentEvents(db), ids, ARRIVAL),
      (a) => a.entityId,
    );
    return new Map([...byId].map(([id, list]) => [id, changeRowsOf(list)]));
  },
  async actualMany(db, ids) {
    const rows = await changes(db)
      .find({ appointmentId: { $in: [...ids] } })
      .sort({ occurredAt: 1, eventId: 1 })
      .toArray();
    return groupByEntity(ids, rows as Row[], (r) => String(r.appointmentId));
  },
  async repair(db, _entityId, expected, actual) {
    const actualById = new Map(actual.map((r) => [String(r._id), r as unknown as ChangeRow]));
    for (const exp of expected as unknown as ChangeRow[]) {
      const act = actualById.get(exp._id);
      actualById.delete(exp._id);
      const set = Object.fromEntries(CHANGE_FIELDS.map((f) => [f, exp[f]]));
      if (!act) {
        // A live stage inserting the row meanwhile wins: its row was decided against the live state.
        await changes(db).updateOne(
          { _id: exp._id },
          { $setOnInsert: { ...set, baseVersion: null } },
          { upsert: true },
        );
        continue;
      }
      // Guarded on the row's baseVersion, which only a live rewrite of the row changes.
      const res = await changes(db).updateOne(
        { _id: exp._id, baseVersion: act.baseVersion ?? null },
        { $set: set },
      );
      if (res.matchedCount !== 1) throw conflict(APPOINTMENT_CHANGES, exp._id);
    }
    // Rows whose event is not archived cannot come from the live stage (it archives first).
    for (const act of actualById.values()) {
      const res = await changes(db).deleteOne({ _id: act._id, baseVersion: act.baseVersion ?? null });
      if (res.deletedCount !== 1) throw conflict(APPOINTMENT_CHANGES, act._id);
    }
  },
  entityIds,
  estimateEntities,
};
