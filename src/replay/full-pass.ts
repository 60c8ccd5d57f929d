// A full replay pass over every entity with archived events, partitioned into shards by a hash of the
// entity id (shard.ts). Shards run with bounded concurrency and checkpoint after every batch (runs.ts),
// so a run stopped by a signal, a crash or an error resumes from its checkpoints under its run id.
import type { Db } from 'mongodb';
import { KeyflowError } from '../errors';
import { diffRows } from './diff';
import { replayEntity, type Conflict, type ReplayEntityOptions } from './engine';
import {
  newRunId,
  ReplayRuns,
  shardKey,
  sumCounts,
  ZERO_COUNTS,
  type ReplayRunDoc,
  type ShardCheckpoint,
  type ShardCounts,
} from './runs';
import { SHARD_HASH, shardOf } from './shard';
import type { Difference, ReplayTable } from './types';

export interface ReplayAllOptions {
  /** Number of shards of a new run (default 4); a resumed run keeps its own. */
  shards?: number;
  repair?: boolean;
  /** Resume this run from its checkpoints instead of starting a new one. */
  runId?: string;
  /** Shards replayed at the same time (default min(shards, 4)). */
  concurrency?: number;
  /** Entity ids read per batch; each batch ends with a checkpoint (default 500). */
  batch?: number;
  /** Differences and conflicts kept in the run and the summary; all are counted (default 1000). */
  maxDifferences?: number;
  /** Called after each checkpoint; throwing stops the run (resumable), and the error is rethrown. */
  onProgress?(progress: ReplayProgress): void;
  /** Stops the run at the next batch boundary of each shard; the summary says `interrupted`. */
  signal?: AbortSignal;
  entityOptions?: Pick<ReplayEntityOptions, 'attempts' | 'backoffMs'>;
}

export interface ReplayProgress extends ShardCounts {
  runId: string;
  /** About how many entities the run covers, when the tables can say. */
  total: number | null;
  shards: number;
  shardsDone: number;
  /** Time and entities/s of this session (a resumed run counts from its resume). */
  elapsedMs: number;
  rate: number;
}

export interface ReplaySummary extends ShardCounts {
  runId: string;
  status: 'done' | 'interrupted';
  shards: number;
  repair: boolean;
  resumed: boolean;
  /** This session's duration and rate. */
  durationMs: number;
  checkedThisSession: number;
  rate: number;
  /** The first `maxDifferences` differences found; `differences` (a count) says how many in all. */
  differenceList: Difference[];
  conflictList: Conflict[];
}

interface Group {
  entity: string;
  tables: ReplayTable[];
}

function groupsOf(tables: readonly ReplayTable[]): Group[] {
  const groups = new Map<string, ReplayTable[]>();
  for (const t of tables) groups.set(t.entity, [...(groups.get(t.entity) ?? []), t]);
  return [...groups].map(([entity, ts]) => ({ entity, tables: ts }));
}

/** MongoDB orders strings by their UTF-8 bytes (simple collation); JS `<` does not, past U+FFFF. */
function compareIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The next ids of a group after `after`, merged over its tables. A table that returned a full batch may
 * hold more ids below another table's last one, so ids past the smallest full batch's last id wait for
 * the next call; `exhausted` when no table had a full batch.
 */
export async function nextIds(
  db: Db,
  tables: readonly ReplayTable[],
  after: string | undefined,
  batch: number,
): Promise<{ ids: string[]; exhausted: boolean }> {
  const lists = await Promise.all(tables.map((t) => t.entityIds(db, after, batch)));
  if (lists.length === 1) return { ids: lists[0]!, exhausted: lists[0]!.length < batch };
  let bound: string | undefined;
  for (const l of lists) {
    const last = l[l.length - 1];
    if (l.length >= batch && last !== undefined && (bound === undefined || compareIds(last, bound) < 0)) {
      bound = last;
    }
  }
  const ids = [...new Set(lists.flat())]
    .filter((id) => bound === undefined || compareIds(id, bound) <= 0)
    .sort(compareIds);
  return { ids, exhausted: bound === undefined };
}

async function estimate(db: Db, groups: Group[]): Promise<number | null> {
  let total: number | null = null;
  for (const g of groups) {
    const counts = await Promise.all(g.tables.map((t) => t.estimateEntities?.(db)));
    const known = counts.filter((c): c is number => typeof c === 'number');
    if (known.length) total = (total ?? 0) + Math.max(...known);
  }
  return total;
}

async function openRun(db: Db, runs: ReplayRuns, tables: readonly ReplayTable[], opts: ReplayAllOptions) {
  const groups = groupsOf(tables);
  const tableNames = tables.map((t) => t.table);
  if (opts.runId === undefined) {
    const shards = opts.shards ?? 4;
    if (!Number.isInteger(shards) || shards < 1) {
      throw new KeyflowError('USAGE', `shards must be a whole number ≥ 1, got ${shards}`);
    }
    const doc = await runs.create({
      runId: newRunId(),
      shards,
      repair: opts.repair ?? false,
      batch: opts.batch ?? 500,
      groups: groups.map((g) => g.entity),
      tables: tableNames,
      estimate: await estimate(db, groups),
    });
    return { doc, groups, resumed: false };
  }
  const doc = await runs.get(opts.runId);
  if (!doc) throw new KeyflowError('USAGE', `no replay run "${opts.runId}" in this database`);
  const mismatch = (what: string, was: unknown, now: unknown) =>
    new KeyflowError(
      'USAGE',
      `run ${doc._id} was started with ${what} ${String(was)}, not ${String(now)}; resume it with the same, or start a new run`,
    );
  if (doc.hash !== SHARD_HASH) throw mismatch('shard hash', doc.hash, SHARD_HASH);
  if (opts.shards !== undefined && opts.shards !== doc.shards)
    throw mismatch('shards', doc.shards, opts.shards);
  if (opts.repair !== undefined && opts.repair !== doc.repair)
    throw mismatch('repair', doc.repair, opts.repair);
  if (doc.tables.join(',') !== tableNames.join(',')) {
    throw mismatch('tables', doc.tables.join(',') || '(none)', tableNames.join(',') || '(none)');
  }
  if (doc.status !== 'done') await runs.resumed(doc._id);
  return { doc, groups, resumed: true };
}

function summarise(doc: ReplayRunDoc, session: { resumed: boolean; startedAt: number; checked: number }) {
  const durationMs = Date.now() - session.startedAt;
  const summary: ReplaySummary = {
    runId: doc._id,
    status: doc.status === 'done' ? 'done' : 'interrupted',
    shards: doc.shards,
    repair: doc.repair,
    resumed: session.resumed,
    ...sumCounts(Object.values(doc.progress)),
    durationMs,
    checkedThisSession: session.checked,
    rate: durationMs > 0 ? (session.checked * 1000) / durationMs : 0,
    differenceList: doc.differences,
    conflictList: doc.conflicts,
  };
  return summary;
}

/**
 * The ids of a page found clean by the tables' batched reads (one query per table for the whole page).
 * Empty when a table has no batched form: then every entity is checked on its own.
 */
async function cleanInBulk(
  db: Db,
  tables: readonly ReplayTable[],
  ids: readonly string[],
): Promise<Set<string>> {
  if (ids.length === 0 || !tables.every((t) => t.expectedMany && t.actualMany)) return new Set();
  const clean = new Set(ids);
  for (const t of tables) {
    const [expected, actual] = await Promise.all([t.expectedMany!(db, ids), t.actualMany!(db, ids)]);
    for (const id of ids) {
      if (!clean.has(id)) continue;
      const d = diffRows({
        entityId: id,
        table: t.table,
        fields: t.fields,
        expected: expected.get(id) ?? [],
        actual: actual.get(id) ?? [],
      });
      if (d.length) clean.delete(id);
    }
  }
  return clean;
}

/** Runs `tasks` with at most `limit` at a time; a failing task stops nothing by itself (see replayAll). */
async function pool(limit: number, tasks: (() => Promise<void>)[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

export async function replayAll(
  db: Db,
  tables: readonly ReplayTable[],
  opts: ReplayAllOptions = {},
): Promise<ReplaySummary> {
  const startedAt = Date.now();
  const runs = new ReplayRuns(db);
  const { doc, groups, resumed } = await openRun(db, runs, tables, opts);
  const runId = doc._id;
  const max = opts.maxDifferences ?? 1000;
  const checkpoints = new Map<number, ShardCheckpoint>();
  for (let s = 0; s < doc.shards; s++) checkpoints.set(s, doc.progress[shardKey(s)]!);
  const session = { resumed, startedAt, checked: 0 };
  if (doc.status === 'done') return summarise(doc, session);

  // One controller for every shard: an outside abort, a failing shard or a throwing onProgress all stop
  // the others at their next batch boundary, so no shard is left running after replayAll returns.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) stop.abort();
  let firstError: unknown;

  const progress = (): ReplayProgress => {
    const elapsedMs = Date.now() - startedAt;
    const all = [...checkpoints.values()];
    return {
      runId,
      ...sumCounts(all),
      total: doc.estimate,
      shards: doc.shards,
      shardsDone: all.filter((c) => c.done).length,
      elapsedMs,
      rate: elapsedMs > 0 ? (session.checked * 1000) / elapsedMs : 0,
    };
  };

  const runShard = async (shard: number) => {
    let cp = checkpoints.get(shard)!;
    while (!cp.done && !stop.signal.aborted) {
      const group = groups[cp.group]!;
      const { ids, exhausted } = await nextIds(db, group.tables, cp.after ?? undefined, doc.batch);
      const counts = { ...ZERO_COUNTS };
      const differences: Difference[] = [];
      const conflicts: Conflict[] = [];
      const mine = ids.filter((id) => shardOf(id, doc.shards) === shard);
      const clean = await cleanInBulk(db, group.tables, mine);
      for (const id of mine) {
        if (clean.has(id)) {
          counts.checked++;
          continue;
        }
        const r = await replayEntity(db, group.tables, id, { ...opts.entityOptions, repair: doc.repair });
        counts.checked++;
        counts.differences += r.found.length;
        if (r.found.length) counts.withDifferences++;
        if (r.found.length && !r.differences.length) counts.repaired++;
        if (r.conflicts.length) counts.conflicts++;
        if (r.differences.length) counts.remaining++;
        differences.push(...r.found);
        conflicts.push(...r.conflicts);
      }
      const nextGroup = exhausted ? cp.group + 1 : cp.group;
      const merged = sumCounts([cp, counts]);
      cp = {
        ...merged,
        group: nextGroup,
        after: exhausted ? null : (ids[ids.length - 1] ?? null),
        done: nextGroup >= groups.length,
      };
      await runs.checkpoint(runId, shard, cp, { differences, conflicts, max });
      checkpoints.set(shard, cp);
      session.checked += counts.checked;
      opts.onProgress?.(progress());
    }
  };

  const tasks = [...checkpoints.keys()].map((shard) => async () => {
    if (stop.signal.aborted) return;
    try {
      await runShard(shard);
    } catch (err) {
      firstError ??= err;
      stop.abort();
    }
  });
  try {
    await pool(opts.concurrency ?? Math.min(doc.shards, 4), tasks);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }

  if (firstError !== undefined) {
    await runs.finish(runId, { error: String((firstError as Error)?.message ?? firstError) });
    throw firstError;
  }
  if ([...checkpoints.values()].every((c) => c.done)) await runs.finish(runId, {});
  const final = await runs.get(runId);
  return summarise(final ?? doc, session);
}
