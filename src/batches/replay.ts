// Replay of Batches counts: the full recount of a batch's BatchAssets rows (the path the live fold no
// longer takes) compared with the counts the fold keeps from transitions, and repaired where they
// drifted. A batch whose rows were partly cleaned up can no longer be recounted and is left alone.
import type { Db } from 'mongodb';
import { KeyflowError } from '../errors';
import type { ReplayTable, Row } from '../replay/types';
import { COLLECTIONS } from './names';
import { batchesOf, recount, rowsOf, type BatchDoc } from './store';

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

  // Guarded on the counts and every counter slot as read; the slots' versions move and their pending
  // lists are emptied, so a fold write decided before the repair re-reads instead of landing on it.
  async repair(db: Db, id: string, expected: Row[], actual: Row[]): Promise<void> {
    const want = expected[0];
    const have = actual[0];
    if (!want || !have) return;
    const batch = await batchesOf(db).findOne({ _id: Number(id) });
    if (!batch) return;
    const parts = Object.entries(batch.parts ?? {});
    const res = await batchesOf(db).updateOne(
      {
        _id: batch._id,
        completed: have.completed as number,
        errors: have.errors as number,
        ...Object.fromEntries(parts.map(([p, s]) => [`parts.${p}.version`, s.version])),
      },
      {
        $set: {
          completed: want.completed as number,
          errors: want.errors as number,
          finished: want.finished === null ? null : new Date(want.finished as number),
          ...Object.fromEntries(parts.map(([p]) => [`parts.${p}.pending`, []])),
        },
        ...(parts.length ? { $inc: Object.fromEntries(parts.map(([p]) => [`parts.${p}.version`, 1])) } : {}),
      } as never,
    );
    if (res.matchedCount !== 1) {
      throw new KeyflowError(
        'HANDLER_TRANSIENT',
        `repair of batch ${id} lost a race with the fold stage; run it again`,
      );
    }
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
