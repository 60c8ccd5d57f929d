// The fold stage: compacts batch-status into BatchAssets and keeps each batch's counts from its rows'
// status transitions (waiting→completed, waiting→error, error→completed on a later try...), never by
// recounting the batch. Per fetch: reads of the rows, their batches and this partition's counter slots,
// by _id; then bulk writes of the slots, the rows, and the batches' counts derived from their slots.
//
// Counting exactly once: each fold partition owns a counter slot per batch, a document of its own in
// BatchSlots (`<batchId>:<partition>`: its counts, a version, and the transitions counted whose rows
// may not be written yet), so its guard `{_id, version}` is one an index names.
// 0. The batch lists the partition among its slots ($addToSet, idempotent) before the slot exists.
// 1. The slot is written, guarded on its version: the $inc of its counts and its whole `pending` list
//    (the list as read, with this fetch's rows' entries replaced), in one atomic update.
// 2. The rows follow, each guarded on the state read and stamped with the slot that counted it.
// 3. The written rows' entries leave `pending`; then each batch touched is re-read with all its
//    slots and its counts set to their sum, guarded on `countsRev` and retried on a lost race, so the
//    last write always read every slot write before it. A batch is finished once its counts cover
//    every row and no slot has a pending transition (so `finished` never shows a waiting row).
// A pending entry stays until its row is written, whatever fetches come after: the next fold of the
// row reads it back (see `reconcile`) and goes on from the state it counted, so neither a redelivery
// cut differently nor a record compaction removed counts it twice. An entry whose row another writer
// moved meanwhile (a second partition of the same row, once partitions were added) is counted back.
// Only one member owns a partition at a time, so a slot never contends; a former owner loses the guard.
import type { Db } from 'mongodb';
import { byIds, writeGuarded, type GuardedWrite, type PlanFailure } from '../state/bulk';
import { concurrentUpdate } from '../state/conflicts';
import type { BatchStageSpec, Planned, StageEvent, Step } from '../topology/types';
import { statusKey, type FlowNames } from './names';
import { encodeEntry, reconcile, sameState, type Counted } from './pending-entries';
import { foldStatus, type RowState } from './reducers';
import type { BatchStatus } from './schemas';
import {
  batchesOf,
  deriveFromSlots,
  rowsOf,
  slotId,
  slotsOf,
  type BatchAssetRow,
  type BatchDoc,
  type BatchSlotDoc,
} from './store';

export interface FoldState {
  /** The row as counted and folded so far; null when it does not exist (never created, or cleaned up). */
  row: (RowState & { customerId: string; batchId: number }) | null;
  /** The row as stored: its write is guarded on it. */
  stored: RowState | null;
  /** What this partition's slot says of the row (see `reconcile`). */
  counted: Omit<Counted, 'counted'>;
  /** This partition's counter slot of the row's batch, as read. */
  slot: { version: number; pending: readonly string[] };
}

/**
 * One record's effect on its row: the counted state moves `from` → `to` (`touch` when the record
 * moves nothing: a duplicate, an older one, or the redelivery of a transition already counted). The
 * first plan of a row in a fetch carries what `reconcile` found; `stored` and `slotVersion` are what
 * was read, and the writes are guarded on them.
 */
export interface FoldPlan {
  kind: 'move' | 'touch';
  rowId: string;
  batchId: number;
  from: RowState;
  to: RowState;
  stored: RowState;
  counted: Omit<Counted, 'counted'>;
  slotVersion: number;
  slotPending: readonly string[];
}

function stateOf(row: BatchAssetRow): RowState {
  return { status: row.status, error: row.error, finished: row.finished?.getTime() ?? null };
}

const dateOf = (ms: number | null) => (ms === null ? null : new Date(ms));

export function foldBatchStatus(e: StageEvent<BatchStatus>, s: FoldState): Step<FoldState, FoldPlan> {
  const v = e.value;
  // No row: the API never created it, or cleanup removed it since; either way nothing to fold.
  if (!s.row || s.row.customerId !== v.customerId) return { plan: null, emit: [], state: s };
  const { customerId, batchId, ...from } = s.row;
  const next = foldStatus(from, v);
  const plan: FoldPlan = {
    kind: next === null ? 'touch' : 'move',
    rowId: statusKey(v.batchId, v.assetId),
    batchId,
    from,
    to: next ?? from,
    stored: s.stored!,
    counted: s.counted,
    slotVersion: s.slot.version,
    slotPending: s.slot.pending,
  };
  if (next === null) return { plan, emit: [], outcome: 'duplicate', state: s };
  return { plan, emit: [], state: { ...s, row: { ...next, customerId, batchId } } };
}

async function read(events: readonly StageEvent<BatchStatus>[], db: Db): Promise<Map<string, FoldState>> {
  const rows = await byIds(
    rowsOf(db),
    events.map((e) => e.key),
  );
  const slotOf = (e: StageEvent<BatchStatus>) => {
    const row = rows.get(e.key);
    return row ? slotId(row.batchId, e.partition) : undefined;
  };
  const slots = await byIds(
    slotsOf(db),
    events.map(slotOf).filter((id) => id !== undefined),
  );
  const out = new Map<string, FoldState>();
  for (const e of events) {
    if (out.has(e.key)) continue;
    const row = rows.get(e.key);
    const id = slotOf(e);
    const slot = id === undefined ? undefined : slots.get(id);
    const pending = slot?.pending ?? [];
    const none: Omit<Counted, 'counted'> = {
      origin: { status: 'waiting', finished: null, error: null },
      drop: [],
      undo: null,
    };
    if (!row || id === undefined) {
      out.set(e.key, { row: null, stored: null, counted: none, slot: { version: 0, pending } });
      continue;
    }
    const { counted, ...rest } = reconcile(e.key, stateOf(row), row.countedIn, id, pending);
    out.set(e.key, {
      row: { ...counted, customerId: row.customerId, batchId: row.batchId },
      stored: stateOf(row),
      counted: rest,
      slot: { version: slot?.version ?? 0, pending },
    });
  }
  return out;
}

const delta = (from: RowState, to: RowState, status: RowState['status']) =>
  (to.status === status ? 1 : 0) - (from.status === status ? 1 : 0);

/** One row's plans of a fetch, together: counted from the first plan's `from` to the last one's `to`. */
interface RowWrite {
  index: number;
  first: FoldPlan;
  to: RowState;
}

/** One batch's counter slot write of a fetch. */
interface SlotWrite {
  first: number;
  version: number;
  pending: readonly string[];
  completed: number;
  errors: number;
  last: number | null;
  drop: Set<string>;
  add: Map<string, string>;
}

async function write(plans: readonly Planned<BatchStatus, FoldPlan>[], db: Db): Promise<PlanFailure[]> {
  const failed: PlanFailure[] = [];
  const partition = plans[0]?.event.partition ?? 0;

  const rows = new Map<string, RowWrite>();
  for (const p of plans) {
    const r = rows.get(p.plan.rowId);
    if (r) r.to = p.plan.to;
    else rows.set(p.plan.rowId, { index: p.index, first: p.plan, to: p.plan.to });
  }
  // 1. The counter slots, one guarded update per batch: the rows' counted moves, the entries undone, and
  //    `pending` as read with the rows' old entries replaced by one per row still to write.
  const perBatch = new Map<number, SlotWrite>();
  for (const [rowId, r] of rows) {
    const { first } = r;
    let b = perBatch.get(first.batchId);
    if (!b) {
      b = {
        first: r.index,
        version: first.slotVersion,
        pending: first.slotPending,
        completed: 0,
        errors: 0,
        last: null,
        drop: new Set(),
        add: new Map(),
      };
      perBatch.set(first.batchId, b);
    }
    for (const raw of first.counted.drop) b.drop.add(raw);
    const { undo } = first.counted;
    if (undo) {
      b.completed += delta(undo.to, undo.from, 'completed');
      b.errors += delta(undo.to, undo.from, 'error');
    }
    b.completed += delta(first.from, r.to, 'completed');
    b.errors += delta(first.from, r.to, 'error');
    if (!sameState(first.from, r.to) && r.to.finished !== null) b.last = Math.max(b.last ?? 0, r.to.finished);
    if (!sameState(r.to, first.stored)) {
      b.add.set(rowId, encodeEntry({ rowId, from: first.counted.origin, to: r.to, base: first.stored }));
    }
  }
  const changed = [...perBatch].filter(
    ([, b]) => b.completed !== 0 || b.errors !== 0 || b.drop.size > 0 || b.add.size > 0,
  );
  // 0. The batches list this partition's slot, so step 3 and the readers find it by _id.
  if (changed.length > 0) {
    await batchesOf(db).bulkWrite(
      changed.map(([batchId]) => ({
        updateOne: { filter: { _id: batchId }, update: { $addToSet: { slots: partition } } },
      })),
      { ordered: false },
    );
  }
  const slotWrites: GuardedWrite<BatchSlotDoc>[] = changed.map(([batchId, b]) => {
    const _id = slotId(batchId, partition);
    const lastFinished = b.last === null ? null : new Date(b.last);
    const pending = [...new Set([...b.pending.filter((raw) => !b.drop.has(raw)), ...b.add.values()])];
    if (b.version === 0) {
      const insert: BatchSlotDoc = {
        _id,
        batchId,
        partition,
        version: 1,
        pending,
        completed: b.completed,
        errors: b.errors,
        lastFinished,
      };
      return { index: b.first, _id, insert };
    }
    return {
      index: b.first,
      _id,
      guard: { version: b.version },
      update: {
        $inc: { completed: b.completed, errors: b.errors, version: 1 },
        $set: { pending },
        ...(lastFinished !== null ? { $max: { lastFinished } } : {}),
      },
    };
  });
  const batchAt = new Map(plans.map((p) => [p.index, p.plan.batchId]));
  const failedBatches = new Map<number, unknown>();
  for (const f of await writeGuarded(slotsOf(db), slotWrites, 'batch counter slot')) {
    failedBatches.set(batchAt.get(f.index)!, f.error);
  }
  for (const p of plans) {
    const error = failedBatches.get(p.plan.batchId);
    if (error !== undefined) failed.push({ index: p.index, error });
  }

  // 2. The rows: each once, with the state its last record left, guarded on the state read and stamped
  //    with the slot that counted it (so a second partition's entry of the same row knows it lost).
  const rowWrites: GuardedWrite<BatchAssetRow>[] = [...rows]
    .filter(([, r]) => !failedBatches.has(r.first.batchId) && !sameState(r.to, r.first.stored))
    .map(([rowId, r]) => ({
      index: r.index,
      _id: rowId,
      guard: { status: r.first.stored.status, finished: dateOf(r.first.stored.finished) },
      update: {
        $set: {
          status: r.to.status,
          error: r.to.error,
          finished: dateOf(r.to.finished),
          countedIn: slotId(r.first.batchId, partition),
        },
      },
    }));
  const rowAt = new Map(plans.map((p) => [p.index, p.plan.rowId]));
  const failedRows = new Set<string>();
  for (const f of await writeGuarded(rowsOf(db), rowWrites, 'batch asset row')) {
    const rowId = rowAt.get(f.index)!;
    failedRows.add(rowId);
    for (const p of plans) if (p.plan.rowId === rowId) failed.push({ index: p.index, error: f.error });
  }

  // 3. The written rows' entries leave `pending` (guarded: only if the slot is still ours), then the
  //    batches' counts are derived from their slots.
  const failedIdx = new Set(failed.map((f) => f.index));
  try {
    const pulls = changed
      .filter(([batchId]) => !failedBatches.has(batchId))
      .map(([batchId, b]) => ({
        batchId,
        version: b.version + 1,
        ids: [...b.add].filter(([rowId]) => !failedRows.has(rowId)).map(([, raw]) => raw),
      }))
      .filter((x) => x.ids.length > 0);
    if (pulls.length > 0) {
      await slotsOf(db).bulkWrite(
        pulls.map((x) => ({
          updateOne: {
            filter: { _id: slotId(x.batchId, partition), version: x.version },
            update: { $pull: { pending: { $in: x.ids } } },
          },
        })),
        { ordered: false },
      );
    }
    await deriveCounts(db, [...new Set(plans.map((p) => p.plan.batchId))]);
  } catch (error) {
    for (const p of plans) if (!failedIdx.has(p.index)) failed.push({ index: p.index, error });
  }
  return failed;
}

/** How often a batch's derived counts are re-read and written again after losing a race. */
const DERIVE_ATTEMPTS = 8;

/**
 * Sets each batch's counts to the sum of its slots, and finishes it once they cover its rows and no
 * slot has a pending transition. Each write is guarded on the `countsRev` read; a batch whose write
 * lost (another partition derived in between) is read again, so the last write read every slot.
 */
async function deriveCounts(db: Db, batchIds: number[]): Promise<void> {
  let ids = batchIds;
  for (let attempt = 0; ids.length > 0; attempt++) {
    if (attempt === DERIVE_ATTEMPTS) {
      throw concurrentUpdate(`the counts (${DERIVE_ATTEMPTS} races lost) of batch`, ids.join(', '));
    }
    const docs = [...(await byIds(batchesOf(db), ids)).values()];
    const slots = await byIds(
      slotsOf(db),
      docs.flatMap((b) => (b.slots ?? []).map((p) => slotId(b._id, p))),
    );
    const writes: GuardedWrite<BatchDoc>[] = [];
    docs.forEach((b, index) => {
      const own = (b.slots ?? []).map((p) => slots.get(slotId(b._id, p))).filter((x) => x !== undefined);
      const d = deriveFromSlots(b, own);
      const legacy = b.countsRev === undefined;
      const finish = b.finished === null && d.pending === 0 && d.completed + d.errors >= b.count;
      const same =
        d.completed === b.completed &&
        d.errors === b.errors &&
        (d.lastFinished?.getTime() ?? null) === (b.lastFinished?.getTime() ?? null);
      if (same && !finish && !legacy) return;
      writes.push({
        index,
        _id: b._id,
        guard: { countsRev: b.countsRev ?? null } as never,
        update: {
          $set: {
            completed: d.completed,
            errors: d.errors,
            lastFinished: d.lastFinished,
            ...(finish ? { finished: d.lastFinished ?? new Date() } : {}),
            ...(legacy ? { adjustCompleted: b.completed, adjustErrors: b.errors } : {}),
          },
          $inc: { countsRev: 1 },
        },
      });
    });
    const lost = await writeGuarded(batchesOf(db), writes, 'batch counts');
    ids = lost.map((f) => docs[f.index]!._id);
  }
}

export function foldStage(names: FlowNames): BatchStageSpec<BatchStatus, FoldState, FoldPlan> {
  return {
    kind: 'batch',
    name: names.foldStage,
    inputs: [names.statusTopic],
    outputs: [],
    description: 'folds batch-status into BatchAssets and counts each batch from its rows’ transitions',
    // The fold reads a row by the record's key, so a record keyed otherwise would fold into the wrong row.
    entityKey: (v) => {
      const s = v as Partial<BatchStatus> | null;
      return s?.batchId === undefined || s.assetId === undefined
        ? undefined
        : statusKey(s.batchId, s.assetId);
    },
    handler: {
      read: (events, ctx) => read(events, ctx.db),
      decide: foldBatchStatus,
      write: async (plans, ctx) => ({ failed: await write(plans, ctx.db) }),
    },
  };
}
