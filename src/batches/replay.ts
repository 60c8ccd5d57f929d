// Replay of Batches counts: the full recount of a batch's BatchAssets rows (the path the live fold no
// longer takes) compared with the counts the fold keeps from transitions, and repaired where they
// drifted. A batch whose rows were partly cleaned up can no longer be recounted and is left alone.
import type { Db } from 'mongodb';
import { classify, KeyflowError } from '../errors';
import type { ReplayTable, Row } from '../replay/types';
import { COLLECTIONS } from './names';
import { byIds, writeGuarded, type PlanFailure } from '../state/bulk';
import { batchesOf, deriveFromSlots, recount, rowsOf, slotId, slotsOf, type BatchDoc } from './store';

function lostRace(id: string): never {
  throw new KeyflowError(
    'HANDLER_TRANSIENT',
    `repair of batch ${id} lost a race with the fold stage; run it again`,
  );
}

/** A guarded step that lost to a live writer asks for a re-run; any other failure is thrown as it is. */
function lostRaceOr(id: string, failures: PlanFailure[]): never {
  const other = failures.find((f) => classify(f.error).code !== 'HANDLER_TRANSIENT');
  if (other) throw other.error;
  return lostRace(id);
}

const FIELDS = ['completed', 'errors', 'finished'];

const rowOf = (b: Pick<BatchDoc, '_id' | 'completed' | 'errors' | 'finished'>): Row => ({
  _id: String(b._id),
  completed: b.completed,
  errors: b.errors,
  finished: b.finished ? b.finished.getTime() : null,
});

export const batchCountsReplay: ReplayTable = {
  table: COLLECTIONS.batches,
  kind: 'derived',
  entity: 'batchId',
  fields: FIELDS,

  async expected(db: Db, id: string): Promise<Row[]> {
    const batch = await batchesOf(db).findOne({ _id: Number(id) });
    if (!batch) return [];
    const c = await recount(db, batch._id);
    // Cleanup removed rows of this (finished) batch: what is left cannot check its counts.
    if (c.count !== batch.count) return [rowOf(batch)];
    return [
      rowOf({
        _id: batch._id,
        completed: c.completed,
        errors: c.errors,
        finished: c.finished === null ? null : new Date(c.finished),
      }),
    ];
  },

  async actual(db: Db, id: string): Promise<Row[]> {
    const batch = await batchesOf(db).findOne({ _id: Number(id) });
    return batch ? [rowOf(batch)] : [];
  },

  // The counts live in the batch's slots (see fold-stage.ts), so the repair does two guarded steps:
  // each slot's version moves and its pending list is emptied (a fold write decided before the repair
  // re-reads instead of landing on it); then the batch takes the recount, and keeps as its adjustment
  // the recount minus the slots' sums, guarded on its countsRev. Losing either race asks for a re-run.
  async repair(db: Db, id: string, expected: Row[], actual: Row[]): Promise<void> {
    const want = expected[0];
    const have = actual[0];
    if (!want || !have) return;
    const batch = await batchesOf(db).findOne({ _id: Number(id) });
    if (!batch || batch.completed !== have.completed || batch.errors !== have.errors) return lostRace(id);
    const slots = [
      ...(
        await byIds(
          slotsOf(db),
          (batch.slots ?? []).map((p) => slotId(batch._id, p)),
        )
      ).values(),
    ];
    const slotsLost = await writeGuarded(
      slotsOf(db),
      slots.map((s, index) => ({
        index,
        _id: s._id,
        guard: { version: s.version } as never,
        update: { $set: { pending: [] }, $inc: { version: 1 } } as never,
      })),
      'batch slots',
    );
    if (slotsLost.length > 0) return lostRaceOr(id, slotsLost);
    const sums = deriveFromSlots({ ...batch, countsRev: 0, adjustCompleted: 0, adjustErrors: 0 }, slots);
    const completed = want.completed as number;
    const errors = want.errors as number;
    const countsLost = await writeGuarded(
      batchesOf(db),
      [
        {
          index: 0,
          _id: batch._id,
          guard: { countsRev: batch.countsRev ?? null } as never,
          update: {
            $set: {
              completed,
              errors,
              finished: want.finished === null ? null : new Date(want.finished as number),
              adjustCompleted: completed - sums.completed,
              adjustErrors: errors - sums.errors,
            },
            $inc: { countsRev: 1 },
          } as never,
        },
      ],
      'batch counts',
    );
    if (countsLost.length > 0) return lostRaceOr(id, countsLost);
  },

  async entityIds(db: Db, after: string | undefined, batch: number): Promise<string[]> {
    const ids = await rowsOf(db)
      .aggregate<{ _id: number }>([
        { $match: after === undefined ? {} : { batchId: { $gt: Number(after) } } },
        { $group: { _id: '$batchId' } },
        { $sort: { _id: 1 } },
        { $limit: batch },
      ])
      .toArray();
    return ids.map((x) => String(x._id));
  },
};
