// The `appointments` action stage: read the appointment and this event's change row, decide purely
// (decide.ts), then write archive → change row → appointment, each write idempotent or guarded.
import type { Db } from 'mongodb';
import { classify, KeyflowError } from '../errors';
import { archiveEvent } from '../state/archive';
import type { ActionStageSpec } from '../topology/types';
import {
  decideAppointment,
  type AppointmentPlan,
  type AppointmentRead,
  type DocWrite,
  type RowWrite,
} from './decide';
import type { AppointmentEvent } from './schemas';
import { appointmentEvents, appointments, changes } from './tables';

const DUPLICATE_KEY = 11000;

function concurrentUpdate(what: string, id: string): KeyflowError {
  // Retriable: the runner runs the event again from read(), which sees the other writer's result.
  return new KeyflowError('HANDLER_TRANSIENT', `concurrent update of ${what} ${id}`, {
    retriable: true,
    details: { id },
  });
}

async function writeRow(db: Db, w: RowWrite, writeStartedAt: number): Promise<void> {
  const { _id, ...fields } = { ...w.row, writeStartedAt };
  if (w.mode === 'insert') {
    // $setOnInsert: if the row exists, the first application's row stays untouched.
    const res = await changes(db).updateOne({ _id }, { $setOnInsert: fields }, { upsert: true });
    if (res.upsertedCount !== 1) throw concurrentUpdate('change row', _id);
    return;
  }
  const res = await changes(db).updateOne({ _id, baseVersion: w.priorBaseVersion }, { $set: fields });
  if (res.matchedCount !== 1) throw concurrentUpdate('change row', _id);
}

/** Writes the appointment only if it is still at the version read (or still absent). */
export async function writeDoc(db: Db, w: DocWrite): Promise<void> {
  if (w.expectedVersion === 0) {
    try {
      await appointments(db).insertOne({ _id: w._id, ...w.state, version: 1 });
    } catch (err) {
      if ((err as { code?: unknown }).code === DUPLICATE_KEY) throw concurrentUpdate('appointment', w._id);
      throw classify(err);
    }
    return;
  }
  const res = await appointments(db).updateOne(
    { _id: w._id, version: w.expectedVersion },
    { $set: { ...w.state }, $inc: { version: 1 } },
  );
  if (res.matchedCount !== 1) throw concurrentUpdate('appointment', w._id);
}

export interface StageNames {
  stage: string;
  input: string;
  output: string;
}

export function appointmentsStage(
  names: StageNames,
): ActionStageSpec<AppointmentEvent, AppointmentRead, AppointmentPlan> {
  return {
    kind: 'action',
    name: names.stage,
    inputs: [names.input],
    outputs: [names.output],
    description: 'Folds appointment events into RSAppointment and RSAppointmentChanges; emits each change.',
    eventId: (v) => (v as AppointmentEvent).eventId,
    occurredAt: (v) => (v as AppointmentEvent).occurredAt,
    tenantId: (v) => (v as AppointmentEvent).tenantId,
    handler: {
      async read(event, ctx) {
        const readStartedAt = ctx.now();
        const [doc, row] = await Promise.all([
          appointments(ctx.db).findOne({ _id: event.value.appointmentId }),
          changes(ctx.db).findOne({ _id: event.value.eventId }),
        ]);
        return { doc, row, readStartedAt };
      },
      decide: (event, read) => decideAppointment(event, read, names.output),
      // The order survives a crash between any two writes, because each step is recognisable on the
      // redelivery that follows:
      // 1. archive first: every row in the tables has its event archived, so replay can recompute it;
      //    a redelivery finds it archived ('duplicate') and goes on.
      // 2. change row next, decided against the version read: it is the durable record of the state
      //    before. Writing the appointment first would lose that: a redelivery would find the event
      //    already folded in and could no longer tell what it changed.
      // 3. the appointment last, guarded on its version: a redelivery that finds the row re-runs the
      //    reducer on the appointment; if it still lacks the event this write is all that remains.
      async write(plan, _event, ctx) {
        if (plan.kind === 'duplicate') return 'duplicate';
        const writeStartedAt = ctx.now();
        if (plan.archive) await archiveEvent(appointmentEvents(ctx.db), plan.archive);
        if (plan.row) await writeRow(ctx.db, plan.row, writeStartedAt);
        if (plan.doc) await writeDoc(ctx.db, plan.doc);
        return 'applied';
      },
    },
  };
}
