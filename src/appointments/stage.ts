// The `appointments` batch stage: read the batch's appointments and change rows by _id, fold each
// appointment's events through decide.ts, then write archive → change rows → appointments in bulk,
// each write idempotent or guarded. A change row is the stored emission, with the input record that
// made it: that record alone emits it again (decide.ts).
import type { Db } from 'mongodb';
import { recordHistory } from '../state/entity-history';
import {
  byIds,
  PlanCut,
  writeGuarded,
  writeTagged,
  type GuardedWrite,
  type PlanFailure,
  type TaggedOp,
} from '../state/bulk';
import type { BatchStageSpec, Planned, StageEvent, Step } from '../topology/types';
import { changeIdOf, decideAppointment, type AppointmentPlan } from './decide';
import { extend, type Lookup } from '../state/fold-map';
import type { AppointmentState } from './reducer';
import type { AppointmentEvent } from './schemas';
import {
  APPOINTMENT_EVENTS,
  appointmentEvents,
  appointments,
  changes,
  type AppointmentDoc,
  type ArchivedAppointmentEvent,
  type ChangeRow,
} from './tables';

export interface StageNames {
  stage: string;
  input: string;
  output: string;
}

/** What one appointment's events see: the document as folded so far and the batch's change rows. */
export interface AppointmentFold {
  doc: AppointmentDoc | null;
  /**
   * Change rows by their _id (tenant and event id): as read for the batch's events, plus those decided
   * in this batch.
   */
  rows: Lookup<string, ChangeRow>;
  readStartedAt: number;
}

type Plans = readonly Planned<AppointmentEvent, AppointmentPlan>[];

async function read(
  events: readonly StageEvent<AppointmentEvent>[],
  db: Db,
  now: number,
): Promise<Map<string, AppointmentFold>> {
  const [docs, rows] = await Promise.all([
    byIds(
      appointments(db),
      events.map((e) => e.key),
    ),
    byIds(
      changes(db),
      events.map((e) => changeIdOf(e.value)),
    ),
  ]);
  const out = new Map<string, AppointmentFold>();
  for (const e of events) {
    let s = out.get(e.key);
    if (!s) out.set(e.key, (s = { doc: docs.get(e.key) ?? null, rows: new Map(), readStartedAt: now }));
    const row = rows.get(changeIdOf(e.value));
    if (row) (s.rows as Map<string, ChangeRow>).set(row._id, row);
  }
  return out;
}

/** The fold: decide.ts against the document as the key's earlier events in the batch left it. */
function fold(
  e: StageEvent<AppointmentEvent>,
  s: AppointmentFold,
  output: string,
): Step<AppointmentFold, AppointmentPlan> {
  const d = decideAppointment(
    e,
    { doc: s.doc, row: s.rows.get(changeIdOf(e.value)) ?? null, readStartedAt: s.readStartedAt },
    output,
  );
  if (d.plan === null || d.plan.kind === 'duplicate') {
    return { ...d, plan: null, outcome: 'duplicate', state: s };
  }
  const { doc, row } = d.plan;
  // Extended in O(1) (fold-map.ts): an appointment with thousands of events in one batch stays linear.
  const rows = row ? extend(s.rows, row.row._id, row.row) : s.rows;
  const next = doc ? { _id: doc._id, ...doc.state, version: doc.expectedVersion + 1 } : s.doc;
  return { ...d, state: { ...s, doc: next, rows } };
}

// The order survives a crash between any two steps, because each is recognisable on the redelivery:
// 1. archive first: every row in the tables has its event archived, so replay can recompute it; a
//    redelivery finds it archived (a duplicate id is success) and goes on.
// 2. change rows next, decided against the version the fold reached: they are the durable record
//    of the state before, and of what is emitted and by which input record. Writing the appointment first would lose that: a redelivery would find the
//    event already folded in and could no longer tell what it changed.
// 3. each appointment last, once per batch with the state its last event left, guarded on the
//    version read: a redelivery that finds the rows re-folds them (decide.ts) onto the document.
async function write(plans: Plans, db: Db, writeStartedAt: number): Promise<PlanFailure[]> {
  const failed: PlanFailure[] = [];
  const cut = new PlanCut(plans);
  const apply = plans.filter((p) => p.plan.kind === 'apply') as Planned<
    AppointmentEvent,
    Extract<AppointmentPlan, { kind: 'apply' }>
  >[];

  const archived: TaggedOp<ArchivedAppointmentEvent>[] = [];
  for (const p of apply) {
    if (p.plan.archive) {
      archived.push({
        index: p.index,
        op: { insertOne: { document: p.plan.archive } },
        duplicateIsDone: true,
      });
    }
  }
  const byIndex = new Map(apply.map((p) => [p.index, p]));
  // The appointment's history by _id first (state/entity-history.ts): replay reaches every archived event.
  cut.fail(
    await recordHistory(
      db,
      APPOINTMENT_EVENTS,
      apply
        .filter((p) => p.plan.archive)
        .map((p) => ({ index: p.index, entityId: p.plan.archive!.entityId, archiveId: p.plan.archive!._id })),
    ),
    failed,
  );
  cut.fail(
    await writeTagged(
      appointmentEvents(db),
      archived.filter((a) => cut.allows(byIndex.get(a.index)!)),
    ),
    failed,
  );

  const rowWrites: GuardedWrite<ChangeRow>[] = [];
  for (const p of apply.filter((x) => cut.allows(x) && x.plan.row)) {
    const w = p.plan.row!;
    const row = { ...w.row, writeStartedAt };
    rowWrites.push(
      w.mode === 'insert'
        ? { index: p.index, _id: row._id, insert: row }
        : { index: p.index, _id: row._id, guard: { baseVersion: w.priorBaseVersion }, update: { $set: row } },
    );
  }
  cut.fail(await writeGuarded(changes(db), rowWrites, 'change row'), failed);

  const docs = new Map<
    string,
    { first: number; expected: number; writes: number; state: AppointmentState }
  >();
  for (const p of apply) {
    if (!cut.allows(p) || !p.plan.doc) continue;
    const { _id, state, expectedVersion } = p.plan.doc;
    const d = docs.get(_id);
    if (d) {
      d.writes++;
      d.state = state;
    } else docs.set(_id, { first: p.index, expected: expectedVersion, writes: 1, state });
  }
  const docWrites: GuardedWrite<AppointmentDoc>[] = [...docs].map(([_id, d]) =>
    d.expected === 0
      ? { index: d.first, _id, insert: { _id, ...d.state, version: d.writes } }
      : {
          index: d.first,
          _id,
          guard: { version: d.expected },
          update: { $set: { ...d.state }, $inc: { version: d.writes } },
        },
  );
  cut.fail(await writeGuarded(appointments(db), docWrites, 'appointment'), failed);
  return failed;
}

export function appointmentsStage(
  names: StageNames,
): BatchStageSpec<AppointmentEvent, AppointmentFold, AppointmentPlan> {
  return {
    kind: 'batch',
    name: names.stage,
    inputs: [names.input],
    outputs: [names.output],
    description: 'Folds appointment events into RSAppointment and RSAppointmentChanges; emits each change.',
    // The topic's key contract: key = appointmentId (a record keyed otherwise is KEY_MISMATCH).
    entityKey: (v) => (v as AppointmentEvent).appointmentId,
    eventId: (v) => (v as AppointmentEvent).eventId,
    occurredAt: (v) => (v as AppointmentEvent).occurredAt,
    tenantId: (v) => (v as AppointmentEvent).tenantId,
    handler: {
      read: (events, ctx) => read(events, ctx.db, ctx.now()),
      decide: (e, s) => fold(e, s, names.output),
      write: async (plans, ctx) => ({ failed: await write(plans, ctx.db, ctx.now()) }),
    },
  };
}
