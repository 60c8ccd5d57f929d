// The `lead-conversions` batch stage: each distinct conversion archived once with the change it made and
// the input record that made it, each row's totals kept incrementally, its one change emitted to
// `changes.lead-conversions.v1` by that input record alone (see fold.ts).
// Per batch: one read of the rows and one of the archive, both by _id; then three bulk writes.
import type { Collection, Db, Filter } from 'mongodb';
import {
  byIds,
  PlanCut,
  writeGuarded,
  writeTagged,
  type GuardedWrite,
  type PlanFailure,
  type TaggedOp,
} from '../state/bulk';
import type { BatchStageSpec, Planned, StageEvent } from '../topology/types';
import {
  foldConversion,
  rowKeyOf,
  type ArchivedInfo,
  type ConversionPlan,
  type LeadState,
  type RowFold,
} from './fold';
import { archiveIdOf, rowIdOf, type RowKey } from './reducer';
import type { ConversionEvent } from './schemas';
import { recordHistory } from '../state/entity-history';
import {
  ARCHIVE,
  archiveOf,
  eventOf,
  exactOf,
  rowsOf,
  type ConversionArchiveDoc,
  type RowDoc,
} from './store';

export interface ConversionStageNames {
  name: string;
  input: string;
  output: string;
}

type Plans = readonly Planned<ConversionEvent, ConversionPlan>[];

/**
 * A stored row as the fold sees it. A row that cannot be read is kept as unreadable, so that only the
 * events counting on it fail (their key alone): it must not fail the read of the whole batch.
 */
function rowFoldOf(doc: RowDoc, key: RowKey): RowFold {
  const fold = { key, version: doc.version ?? null, pending: new Set(doc.pending ?? []) };
  try {
    return { ...fold, totals: exactOf(doc) };
  } catch (err) {
    return { ...fold, totals: null, unreadable: err as Error };
  }
}

async function read(events: readonly StageEvent<ConversionEvent>[], db: Db): Promise<Map<string, LeadState>> {
  const [rows, archived] = await Promise.all([
    byIds(
      rowsOf(db),
      events.map((e) => rowIdOf(e.value)),
    ),
    byIds(
      archiveOf(db) as Collection<ConversionArchiveDoc>,
      events.map((e) => archiveIdOf(e.value)),
    ),
  ]);
  const states = new Map<string, { rows: Map<string, RowFold>; archived: Map<string, ArchivedInfo> }>();
  for (const e of events) {
    let s = states.get(e.key);
    if (!s) states.set(e.key, (s = { rows: new Map(), archived: new Map() }));
    const rowId = rowIdOf(e.value);
    const doc = rows.get(rowId);
    if (doc && !s.rows.has(rowId)) s.rows.set(rowId, rowFoldOf(doc, rowKeyOf(e.value)));
    const a = archived.get(archiveIdOf(e.value));
    if (a) {
      const { change, input } = a.value;
      s.archived.set(a._id, { event: eventOf(a), change, input, counted: a.counted !== false });
    }
  }
  return new Map([...states].map(([k, s]) => [k, { ...s, handled: new Map() }]));
}

// Write order, and why a death between any two steps loses nothing, counts nothing twice and emits
// each change once (the offset is committed only after all three, with the emit, so the batch always
// comes again; and only the input record stored with a change re-sends it, see fold.ts):
//  1. Archive the new events, each with its change and its input record, `counted: false`. The insert
//     keyed by (tenant, event id) is the dedupe for ever: a re-send 10,000 events later finds it and
//     counts and emits nothing (or, carrying other content, is refused as EVENT_ID_REUSED by the fold).
//     An entry that is archived but neither counted nor listed by its row is counted again by whichever
//     record now carries it: its change and input are rewritten here first, guarded on `counted: false`,
//     so the entry names the record that will emit before the row counts it.
//  2. Write each row's folded totals, guarded on the version read, listing the ids it counted in
//     `pending`. Dying before this leaves archived, unmarked events that no row lists: the redelivery
//     counts them (rewriting their change and input).
//  3. Mark those archive entries counted (a rewritten one with its change and input again: a rival
//     writer's step 1 may have landed after ours, and the row is ours). Dying before this leaves
//     unmarked events that the row's `pending` lists: the redelivery recognises them as counted, only
//     marks them, and re-sends the stored change, being the stored input record. A row's next write
//     comes only after that redelivery (per-key order), and it lists them again, so `pending` always
//     covers every unmarked event the row counts.
async function write(plans: Plans, db: Db): Promise<PlanFailure[]> {
  const failed: PlanFailure[] = [];
  const cut = new PlanCut(plans);
  const now = Date.now();

  const inserts: TaggedOp<ConversionArchiveDoc>[] = [];
  for (const p of plans) {
    if (p.plan.kind !== 'count' || p.plan.archive !== 'insert') continue;
    const v = p.event.value;
    const doc: ConversionArchiveDoc = {
      _id: archiveIdOf(v),
      eventId: v.eventId,
      entityId: v.leadId,
      tenantId: v.tenantId,
      occurredAt: v.occurredAt,
      arrivedAt: now,
      topic: p.event.topic,
      partition: p.event.partition,
      offset: Number(p.event.offset),
      value: {
        conversionType: v.conversionType,
        amount: v.amount,
        change: p.plan.change,
        input: p.plan.input,
      },
      counted: false,
    };
    // A duplicate id here means another member archived it since our read: retry, and re-read it.
    inserts.push({ index: p.index, op: { insertOne: { document: doc } } });
  }
  // An entry counted again names its new change and input before the row counts it (see above). One
  // that was counted meanwhile matches nothing here, and its row write then loses its guard.
  for (const p of plans) {
    if (p.plan.kind !== 'count' || p.plan.archive !== 'rewrite') continue;
    const filter = { _id: archiveIdOf(p.event.value), counted: false };
    const update = { $set: { 'value.change': p.plan.change, 'value.input': p.plan.input } };
    inserts.push({ index: p.index, op: { updateOne: { filter, update } } as never });
  }
  // The lead's history by _id first (state/entity-history.ts), so replay reaches every archived event.
  const listed = plans.filter((p) => p.plan.kind === 'count');
  const byIndex = new Map(plans.map((p) => [p.index, p]));
  cut.fail(
    await recordHistory(
      db,
      ARCHIVE,
      listed.map((p) => ({
        index: p.index,
        entityId: p.event.value.leadId,
        archiveId: archiveIdOf(p.event.value),
        rowId: p.plan.rowId,
      })),
    ),
    failed,
  );
  cut.fail(
    await writeTagged(
      archiveOf(db) as Collection<ConversionArchiveDoc>,
      inserts.filter((i) => cut.allows(byIndex.get(i.index)!)),
    ),
    failed,
  );

  const byRow = new Map<string, Planned<ConversionEvent, ConversionPlan>[]>();
  for (const p of plans) {
    if (!cut.allows(p)) continue;
    const list = byRow.get(p.plan.rowId);
    if (list) list.push(p);
    else byRow.set(p.plan.rowId, [p]);
  }
  const rowWrites: GuardedWrite<RowDoc>[] = [];
  for (const [rowId, list] of byRow) {
    const counts = list.filter((p) => p.plan.kind === 'count');
    const last = counts[counts.length - 1];
    if (last === undefined || last.plan.kind !== 'count') continue;
    const { after, change, version } = last.plan;
    const fields = {
      tenantId: change.tenantId,
      leadId: change.leadId,
      conversionType: change.conversionType,
      count: after.count,
      amount: change.after.amount,
      amountMicros: after.micros.toString(),
      firstAt: after.firstAt,
      lastAt: after.lastAt,
      pending: list.map((p) => p.event.value.eventId),
      updatedAt: now,
    };
    rowWrites.push(
      version === 0
        ? { index: list[0]!.index, _id: rowId, insert: { _id: rowId, ...fields, version: 1 } }
        : {
            index: list[0]!.index,
            _id: rowId,
            // A row from before versions is guarded on `version: null` (which matches an absent field,
            // and is served by the guard index); this write gives it version 1.
            guard: { version } as Filter<RowDoc>,
            update: { $set: fields, $inc: { version: 1 } },
          },
    );
  }
  cut.fail(await writeGuarded(rowsOf(db), rowWrites, 'conversions row'), failed);

  const marked = plans.filter((p) => cut.allows(p));
  if (marked.length > 0) {
    const plain = marked.filter((p) => p.plan.kind === 'recognise' || p.plan.archive === 'insert');
    const rewritten = marked.flatMap((p) =>
      p.plan.kind === 'count' && p.plan.archive === 'rewrite' ? [{ p, plan: p.plan }] : [],
    );
    try {
      await archiveOf(db).bulkWrite(
        [
          // One update per entry, by _id: an updateMany over an $in list is a scan on some servers.
          ...plain.map((p) => ({
            updateOne: { filter: { _id: archiveIdOf(p.event.value) }, update: { $set: { counted: true } } },
          })),
          ...rewritten.map(({ p, plan }) => ({
            updateOne: {
              filter: { _id: archiveIdOf(p.event.value) },
              update: { $set: { counted: true, 'value.change': plan.change, 'value.input': plan.input } },
            },
          })),
        ] as never,
        { ordered: false },
      );
    } catch (error) {
      for (const p of marked) failed.push({ index: p.index, error });
    }
  }
  return failed;
}

export function conversionsStage(
  names: ConversionStageNames,
): BatchStageSpec<ConversionEvent, LeadState, ConversionPlan> {
  return {
    kind: 'batch',
    name: names.name,
    inputs: [names.input],
    outputs: [names.output],
    description:
      'Counts conversions per (tenant, lead, type) incrementally; each distinct (tenant, event id) archived once.',
    // The contract names the event's identity in the value; upstream sends no Keyflow headers.
    // The topic's key contract: key = leadId. Rows are folded per key, so two events of one row under
    // two keys would both count from the same version; such a record is KEY_MISMATCH instead.
    entityKey: (v) => (v as ConversionEvent).leadId,
    eventId: (v) => (v as ConversionEvent).eventId,
    occurredAt: (v) => (v as ConversionEvent).occurredAt,
    tenantId: (v) => (v as ConversionEvent).tenantId,
    handler: {
      read: (events, ctx) => read(events, ctx.db),
      decide: (e, s) => foldConversion(e, s, names.output),
      write: async (plans, ctx) => ({ failed: await write(plans, ctx.db) }),
    },
  };
}
