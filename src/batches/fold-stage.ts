// The fold stage: compacts batch-status into BatchAssets and recounts the batch from its rows. Idempotent
// by content, not by event id: a record that does not move the row forward changes nothing, however
// often and under whatever id it arrives; the recount always runs, so one killed mid-way is redone.
import { KeyflowError } from '../errors';
import type { ActionStageSpec } from '../topology/types';
import { statusKey, type FlowNames } from './names';
import { foldStatus, type RowState } from './reducers';
import type { BatchStatus } from './schemas';
import { refreshCounts, rowsOf, type BatchAssetRow } from './store';

interface FoldPlan {
  rowId: string;
  batchId: number;
  /** The row as read, so the write applies only if nobody moved it meanwhile. */
  expect: RowState;
  next: RowState | null;
}

function stateOf(row: BatchAssetRow): RowState {
  return { status: row.status, error: row.error, finished: row.finished?.getTime() ?? null };
}

export function foldStage(names: FlowNames): ActionStageSpec<BatchStatus, BatchAssetRow | null, FoldPlan> {
  return {
    kind: 'action',
    name: names.foldStage,
    inputs: [names.statusTopic],
    outputs: [],
    description: 'folds batch-status into BatchAssets and recounts each batch from its rows',
    handler: {
      read: (e, ctx) => rowsOf(ctx.db).findOne({ _id: statusKey(e.value.batchId, e.value.assetId) }),
      decide(e, row) {
        // No row: the API never created it, or cleanup removed it since; either way nothing to fold.
        if (!row || row.customerId !== e.value.customerId) return { plan: null, emit: [] };
        const expect = stateOf(row);
        const next = foldStatus(expect, e.value);
        return { plan: { rowId: row._id, batchId: row.batchId, expect, next }, emit: [] };
      },
      async write(plan, _e, ctx) {
        if (plan.next) {
          const res = await rowsOf(ctx.db).updateOne(
            {
              _id: plan.rowId,
              status: plan.expect.status,
              finished: plan.expect.finished === null ? null : new Date(plan.expect.finished),
            },
            {
              $set: {
                status: plan.next.status,
                error: plan.next.error,
                finished: plan.next.finished === null ? null : new Date(plan.next.finished),
              },
            },
          );
          if (res.matchedCount === 0) {
            throw new KeyflowError(
              'HANDLER_TRANSIENT',
              `row ${plan.rowId} changed while folding; re-reading it`,
            );
          }
        }
        await refreshCounts(ctx.db, plan.batchId);
        return plan.next ? 'applied' : 'duplicate';
      },
    },
  };
}
