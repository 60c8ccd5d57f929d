// `keyflow replay --since <time>`: checks (and with repair, fixes) only the entities a live write touched
// at or after a time — the check after an incident, and the cheap nightly one. The entities come from
// each table's `touchedIds` (the `touchedAt` the live stages stamp on the entity's history by _id, see
// state/entity-history.ts), a page at a time, each page read with one `$in` per table like the full pass.
import type { Db } from 'mongodb';
import { KeyflowError } from '../errors';
import { prepareTables, type Conflict, type ReplayEntityOptions } from './engine';
import { replayMany } from './many';
import { sumCounts, ZERO_COUNTS, type ShardCounts } from './runs';
import type { Difference, ReplayTable } from './types';

export interface ReplaySinceOptions {
  repair?: boolean;
  /** Entities per page (default 500). */
  batch?: number;
  /** Differences and conflicts kept in the summary; all are counted (default 1000). */
  maxDifferences?: number;
  onProgress?(counts: ShardCounts): void;
  signal?: AbortSignal;
  entityOptions?: Pick<ReplayEntityOptions, 'attempts' | 'backoffMs'>;
}

export interface SinceSummary extends ShardCounts {
  since: string;
  repair: boolean;
  status: 'done' | 'interrupted';
  durationMs: number;
  /** Entities checked per second. */
  rate: number;
  differenceList: Difference[];
  conflictList: Conflict[];
  /** Tables without an entity history: `--since` cannot check them (the full pass does). */
  skipped: string[];
}

export async function replaySince(
  db: Db,
  tables: readonly ReplayTable[],
  since: Date,
  opts: ReplaySinceOptions = {},
): Promise<SinceSummary> {
  const started = Date.now();
  const batch = opts.batch ?? 500;
  const max = opts.maxDifferences ?? 1000;
  const repair = opts.repair ?? false;
  // Tables that cannot say what was touched (no entity history) are left to the full pass, and named.
  const covered = tables.filter((t) => t.touchedIds);
  const skipped = tables.filter((t) => !t.touchedIds).map((t) => t.table);
  if (covered.length === 0) {
    throw new KeyflowError(
      'USAGE',
      `none of ${skipped.join(', ')} can tell which entities were touched; use --all`,
    );
  }
  const groups = new Map<string, ReplayTable[]>();
  for (const t of covered) groups.set(t.entity, [...(groups.get(t.entity) ?? []), t]);
  await prepareTables(db, covered);
  let counts: ShardCounts = { ...ZERO_COUNTS };
  const differenceList: Difference[] = [];
  const conflictList: Conflict[] = [];

  const check = async (group: ReplayTable[], ids: string[]) => {
    const page = await replayMany(db, group, ids, { ...opts.entityOptions, repair });
    for (const d of page.differences) if (differenceList.length < max) differenceList.push(d);
    for (const c of page.conflicts) if (conflictList.length < max) conflictList.push(c);
    counts = sumCounts([counts, page.counts]);
    opts.onProgress?.(counts);
  };

  let interrupted = false;
  for (const group of groups.values()) {
    // Tables of one entity kind share the entity's history: one walk of touched ids serves them all.
    let ids: string[] = [];
    for await (const id of group[0]!.touchedIds!(db, since)) {
      if (opts.signal?.aborted) {
        interrupted = true;
        break;
      }
      ids.push(id);
      if (ids.length === batch) {
        await check(group, ids);
        ids = [];
      }
    }
    if (interrupted) break;
    if (ids.length) await check(group, ids);
  }
  const durationMs = Date.now() - started;
  return {
    ...counts,
    since: since.toISOString(),
    repair,
    status: interrupted ? 'interrupted' : 'done',
    durationMs,
    rate: durationMs > 0 ? (counts.checked * 1000) / durationMs : 0,
    differenceList,
    conflictList,
    skipped,
  };
}
