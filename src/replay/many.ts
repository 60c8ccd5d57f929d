// Replays a list of entities of one kind the batched way: one `$in` read per table for the whole list
// (cleanInBulk), then the entities found dirty one by one (replayEntity, with repair if asked). The demo
// and `replay --since` use it; the full pass does the same page by page with its checkpoints.
import type { Db } from 'mongodb';
import { replayEntity, type Conflict, type ReplayEntityOptions } from './engine';
import { cleanInBulk } from './full-pass';
import { ZERO_COUNTS, type ShardCounts } from './runs';
import type { Difference, ReplayTable } from './types';

export interface ManyResult {
  counts: ShardCounts;
  differences: Difference[];
  conflicts: Conflict[];
}

export async function replayMany(
  db: Db,
  tables: readonly ReplayTable[],
  ids: readonly string[],
  opts: ReplayEntityOptions = {},
): Promise<ManyResult> {
  return replayDirty(db, tables, ids, await cleanInBulk(db, tables, ids), opts);
}

/** Counts `ids` as checked and replays the ones not in `clean` one by one, tallying what they found. */
export async function replayDirty(
  db: Db,
  tables: readonly ReplayTable[],
  ids: readonly string[],
  clean: ReadonlySet<string>,
  opts: ReplayEntityOptions,
): Promise<ManyResult> {
  const counts = { ...ZERO_COUNTS };
  const differences: Difference[] = [];
  const conflicts: Conflict[] = [];
  for (const id of ids) {
    counts.checked++;
    if (clean.has(id)) continue;
    const r = await replayEntity(db, tables, id, opts);
    counts.differences += r.found.length;
    if (r.found.length) counts.withDifferences++;
    if (r.found.length && !r.differences.length) counts.repaired++;
    if (r.conflicts.length) counts.conflicts++;
    if (r.differences.length) counts.remaining++;
    differences.push(...r.found);
    conflicts.push(...r.conflicts);
  }
  return { counts, differences, conflicts };
}
