// The fold stage: compacts batch-status into BatchAssets and keeps each batch's counts from its rows'
// status transitions (waiting→completed, waiting→error, error→completed on a later try...), never by
// recounting the batch. Per fetch: reads of the rows, their batches and this partition's counter slots,
// by _id; then bulk writes of the slots, the rows, and the batches' counts derived from their slots.
//
// Counting exactly once: each fold partition owns a counter slot per batch, a document of its own in
// BatchSlots (`<batchId>:<partition>`: its counts, a version, and the transitions counted whose rows
// may not be written yet), so its guard `{_id, version}` is one an index names.
// 0. The batch lists the partition among its slots ($addToSet, idempotent) before the slot exists.
// 1. The slot is written, guarded on its version: the $inc of its counts and the new transitions
//    added to `pending`, in one atomic update (or its creation, which fails if it exists).
// 2. The rows follow, each guarded on the state read.
// 3. The written rows' transitions leave `pending`; then each batch touched is re-read with all its
//    slots and its counts set to their sum, guarded on `countsRev` and retried on a lost race, so the
//    last write always read every slot write before it. A batch is finished once its counts cover
//    every row and no slot has a pending transition (so `finished` never shows a waiting row).
// A death before 3 leaves transitions pending: their redelivery, however the fetches are cut,
// recognises each one, writes its row without counting it again and derives the counts anew. Only one
// member owns a partition at a time, so a slot never contends; a former owner loses the guard.
import type { Db } from 'mongodb';
import { byIds, writeGuarded, type GuardedWrite, type PlanFailure } from '../state/bulk';
import { concurrentUpdate } from '../state/conflicts';
import type { BatchStageSpec, Planned, StageEvent, Step } from '../topology/types';
import { statusKey, type FlowNames } from './names';
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

/** A row's transition as its counter slot lists it: the row and the state it moved to. */
export function transitionId(rowId: string, to: RowState): string {
  return `${rowId}|${to.status}|${to.finished ?? ''}|${to.error ?? ''}`;
}

export interface FoldState {
  /** The row as folded so far; null when it does not exist (never created, or cleaned up). */
  row: (RowState & { customerId: string; batchId: number }) | null;
  /** The row as stored: its write is guarded on it. */
  stored: RowState | null;
  /** This partition's counter slot of the row's batch, as read. */
  slot: { version: number; pending: readonly string[] };
}

export type FoldPlan =
  /**
   * The row moves from `from` to `to`; `count` is false when the slot already counted this very
   * transition. `stored` and `slotVersion` are what was read: the writes are guarded on them.
   */
  | {
      kind: 'move';
      rowId: string;
      batchId: number;
      from: RowState;
      to: RowState;
      count: boolean;
      stored: RowState;
      slotVersion: number;
      slotPending: readonly string[];
    }
  /**
   * Nothing moves, but the batch is looked at: a transition left pending by a crash after its row
   * was written leaves `pending`, and a finish lost in a crash is made.
   */
  | { kind: 'touch'; batchId: number; rowId: string; state: RowState; slotVersion: number };

function stateOf(row: BatchAssetRow): RowState {
  return { status: row.status, error: row.error, finished: row.finished?.getTime() ?? null };
}

const dateOf = (ms: number | null) => (ms === null ? null : new Date(ms));

export function foldBatchStatus(e: StageEvent<BatchStatus>, s: FoldState): Step<FoldState, FoldPlan> {
  const v = e.value;
  // No row: the API never created it, or cleanup removed it since; either way nothing to fold.
  if (!s.row || s.row.customerId !== v.customerId) return { plan: null, emit: [], state: s };
  const rowId = statusKey(v.batchId, v.assetId);
  const next = foldStatus(s.row, v);
  if (next === null) {
    const touch = {
      kind: 'touch' as const,
      batchId: s.row.batchId,
      rowId,
      state: s.row,
      slotVersion: s.slot.version,
    };
    return { plan: touch, emit: [], outcome: 'duplicate', state: s };
  }
  const count = !s.slot.pending.includes(transitionId(rowId, next));
  return {
    plan: {
      kind: 'move',
      rowId,
      batchId: s.row.batchId,
      from: s.row,
      to: next,
      count,
      stored: s.stored!,
      slotVersion: s.slot.version,
      slotPending: s.slot.pending,
    },
    emit: [],
    state: { ...s, row: { ...s.row, ...next } },
  };
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
    out.set(e.key, {
      row: row ? { ...stateOf(row), customerId: row.customerId, batchId: row.batchId } : null,
      stored: row ? stateOf(row) : null,
      slot: { version: slot?.version ?? 0, pending: slot?.pending ?? [] },
    });
  }
  return out;
}

const delta = (from: RowState, to: RowState, status: RowState['status']) =>
  (to.status === status ? 1 : 0) - (from.status === status ? 1 : 0);

async function write(plans: readonly Planned<BatchStatus, FoldPlan>[], db: Db): Promise<PlanFailure[]> {
  const failed: PlanFailure[] = [];
  const moves = plans.filter((p) => p.plan.kind === 'move') as Planned<
    BatchStatus,
    Extract<FoldPlan, { kind: 'move' }>
  >[];
  const partition = plans[0]?.event.partition ?? 0;

  // 1. The counter slots, one guarded update per batch.
  const perBatch = new Map<
    number,
    {
      first: number;
      version: number;
      completed: number;
      errors: number;
      last: number | null;
      pending: string[];
    }
  >();
  for (const p of moves) {
    const slotVersion = p.plan.slotVersion;
    let b = perBatch.get(p.plan.batchId);
    if (!b)
      perBatch.set(
        p.plan.batchId,
        (b = { first: p.index, version: slotVersion, completed: 0, errors: 0, last: null, pending: [] }),
      );
    b.pending.push(transitionId(p.plan.rowId, p.plan.to));
    if (p.plan.to.finished !== null) b.last = Math.max(b.last ?? 0, p.plan.to.finished);
    if (!p.plan.count) continue;
    b.completed += delta(p.plan.from, p.plan.to, 'completed');
    b.errors += delta(p.plan.from, p.plan.to, 'error');
  }
  // 0. The batches list this partition's slot, so step 3 and the readers find it by _id.
  if (perBatch.size > 0) {
    await batchesOf(db).bulkWrite(
      [...perBatch.keys()].map((batchId) => ({
        updateOne: { filter: { _id: batchId }, update: { $addToSet: { slots: partition } } },
      })),
      { ordered: false },
    );
  }
  const slotWrites: GuardedWrite<BatchSlotDoc>[] = [...perBatch].map(([batchId, b]) => {
    const _id = slotId(batchId, partition);
    const lastFinished = b.last === null ? null : new Date(b.last);
    if (b.version === 0) {
      const insert: BatchSlotDoc = {
        _id,
        batchId,
        partition,
        version: 1,
        pending: b.pending,
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
        $set: { pending: b.pending },
        ...(lastFinished !== null ? { $max: { lastFinished } } : {}),
      },
    };
  });
  const moveAt = new Map(moves.map((p) => [p.index, p]));
  const failedBatches = new Map<number, unknown>();
  for (const f of await writeGuarded(slotsOf(db), slotWrites, 'batch counter slot')) {
    failedBatches.set(moveAt.get(f.index)!.plan.batchId, f.error);
  }
  for (const p of moves) {
    const error = failedBatches.get(p.plan.batchId);
    if (error !== undefined) failed.push({ index: p.index, error });
  }

  // 2. The rows: each once, with the state its last record left, guarded on the state read.
  const rows = new Map<string, { index: number; to: RowState; stored: RowState }>();
  for (const p of moves) {
    if (failedBatches.has(p.plan.batchId)) continue;
    const r = rows.get(p.plan.rowId);
    if (r) r.to = p.plan.to;
    else rows.set(p.plan.rowId, { index: p.index, to: p.plan.to, stored: p.plan.stored });
  }
  const rowWrites: GuardedWrite<BatchAssetRow>[] = [...rows].map(([rowId, r]) => ({
    index: r.index,
    _id: rowId,
    guard: { status: r.stored.status, finished: dateOf(r.stored.finished) },
    update: { $set: { status: r.to.status, error: r.to.error, finished: dateOf(r.to.finished) } },
  }));
  for (const f of await writeGuarded(rowsOf(db), rowWrites, 'batch asset row')) {
    const rowId = moveAt.get(f.index)!.plan.rowId;
    for (const p of moves) if (p.plan.rowId === rowId) failed.push({ index: p.index, error: f.error });
  }

  // 3. The written rows' transitions leave `pending` (guarded: only if the slot is still ours), then the
  //    batches' counts are derived from their slots.
  const failedIdx = new Set(failed.map((f) => f.index));
  const settled = new Map<number, { version: number; ids: string[] }>();
  for (const p of plans) {
    if (failedIdx.has(p.index)) continue;
    const b = perBatch.get(p.plan.batchId);
    const version = b ? b.version + 1 : p.plan.slotVersion;
    const id =
      p.plan.kind === 'move'
        ? transitionId(p.plan.rowId, p.plan.to)
        : transitionId(p.plan.rowId, p.plan.state);
    const s2 = settled.get(p.plan.batchId);
    if (s2) s2.ids.push(id);
    else settled.set(p.plan.batchId, { version, ids: [id] });
  }
  try {
    const pulls = [...settled].filter(([, x]) => x.version > 0);
    if (pulls.length > 0) {
      await slotsOf(db).bulkWrite(
        pulls.map(([batchId, x]) => ({
          updateOne: {
            filter: { _id: slotId(batchId, partition), version: x.version },
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
    handler: {
      read: (events, ctx) => read(events, ctx.db),
      decide: foldBatchStatus,
      write: async (plans, ctx) => ({ failed: await write(plans, ctx.db) }),
    },
  };
}
