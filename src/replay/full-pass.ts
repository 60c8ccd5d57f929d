// A full replay pass over every entity with archived events, split into shards. Where the tables walk
// their ids as a stream (ReplayTable.walkIds: the domains' `_id`-keyed histories), each shard owns its
// own disjoint id range (bounds from a sample, kept in the run): it slices the range from the sample
// when the sample read every id (up to pages.ts KNOWN_IDS_MAX), else reads it as one streaming read;
// otherwise every shard pages every id and keeps those of its hash (shard.ts). A shard keeps its next
// page's reads in flight while the current page is diffed, reads a page with one `$in` per table, and
// checkpoints after every page (runs.ts), so a stopped run resumes from its checkpoints under its run id.
import { replayDirty } from './many';
import type { Db } from 'mongodb';
import { KeyflowError } from '../errors';
import { diffRows } from './diff';
import { prepareTables, type Conflict, type ReplayEntityOptions } from './engine';
import {
  newRunId,
  ReplayRuns,
  shardKey,
  sumCounts,
  type ReplayRunDoc,
  type ShardCheckpoint,
  type ShardCounts,
} from './runs';
import { RANGE_SHARDS, SHARD_HASH, shardOf } from './shard';
import type { Difference, ReplayTable } from './types';
import { estimate, groupsOf, hashPages, pageSize, rangeBounds, rangePages } from './pages';

export interface ReplayAllOptions {
  /** Number of shards of a new run (default 4); a resumed run keeps its own. */
  shards?: number;
  repair?: boolean;
  /** Resume this run from its checkpoints instead of starting a new one. */
  runId?: string;
  /** Shards replayed at the same time (default min(shards, 4)). */
  concurrency?: number;
  /**
   * Entity ids read per batch; each batch ends with a checkpoint. Default 500; with range shards about
   * an eighth of a shard's share of the estimated entities, between 64 and 500, so a small pass still
   * has a page read ahead while one is diffed (one page per shard would leave nothing to overlap).
   */
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

async function openRun(db: Db, runs: ReplayRuns, tables: readonly ReplayTable[], opts: ReplayAllOptions) {
  const groups = groupsOf(tables);
  const tableNames = tables.map((t) => t.table);
  if (opts.runId === undefined) {
    const shards = opts.shards ?? 4;
    if (!Number.isInteger(shards) || shards < 1) {
      throw new KeyflowError('USAGE', `shards must be a whole number ≥ 1, got ${shards}`);
    }
    await prepareTables(db, tables);
    const ranged = await rangeBounds(db, groups, shards);
    const estimated = await estimate(db, groups);
    const doc = await runs.create({
      runId: newRunId(),
      shards,
      ...(ranged ? { hash: RANGE_SHARDS, bounds: ranged.bounds } : {}),
      repair: opts.repair ?? false,
      batch: opts.batch ?? pageSize(estimated, shards, ranged !== null),
      groups: groups.map((g) => g.entity),
      tables: tableNames,
      estimate: estimated,
    });
    return { doc, groups, known: ranged?.known ?? null, resumed: false };
  }
  const doc = await runs.get(opts.runId);
  if (!doc) throw new KeyflowError('USAGE', `no replay run "${opts.runId}" in this database`);
  const mismatch = (what: string, was: unknown, now: unknown) =>
    new KeyflowError(
      'USAGE',
      `run ${doc._id} was started with ${what} ${String(was)}, not ${String(now)}; resume it with the same, or start a new run`,
    );
  const hash = doc.bounds ? RANGE_SHARDS : SHARD_HASH;
  if (doc.hash !== hash) throw mismatch('shard hash', doc.hash, hash);
  await prepareTables(db, tables);
  if (opts.shards !== undefined && opts.shards !== doc.shards)
    throw mismatch('shards', doc.shards, opts.shards);
  if (opts.repair !== undefined && opts.repair !== doc.repair)
    throw mismatch('repair', doc.repair, opts.repair);
  if (doc.tables.join(',') !== tableNames.join(',')) {
    throw mismatch('tables', doc.tables.join(',') || '(none)', tableNames.join(',') || '(none)');
  }
  if (doc.status !== 'done') await runs.resumed(doc._id);
  // The ids are read again (the run keeps only its cuts); a resumed shard slices them past its checkpoint.
  const known =
    doc.bounds && doc.status !== 'done' ? ((await rangeBounds(db, groups, doc.shards))?.known ?? null) : null;
  return { doc, groups, known, resumed: true };
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
export async function cleanInBulk(
  db: Db,
  tables: readonly ReplayTable[],
  ids: readonly string[],
): Promise<Set<string>> {
  if (ids.length === 0 || !tables.every((t) => t.expectedMany && t.actualMany)) return new Set();
  const clean = new Set(ids);
  const read = await Promise.all(
    tables.map(async (t) => {
      const [expected, actual] = await Promise.all([t.expectedMany!(db, ids), t.actualMany!(db, ids)]);
      return { t, expected, actual };
    }),
  );
  for (const { t, expected, actual } of read) {
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
  const { doc, groups, known, resumed } = await openRun(db, runs, tables, opts);
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

  /** The pages of a shard from its checkpoint on, group after group. */
  async function* pagesOf(shard: number, from: ShardCheckpoint) {
    for (let g = from.group; g < groups.length; g++) {
      const group = groups[g]!;
      const after = g === from.group ? (from.after ?? undefined) : undefined;
      const cuts = doc.bounds?.[g];
      if (cuts) {
        const lower = shard === 0 ? undefined : cuts[shard - 1];
        const upper = shard === doc.shards - 1 ? undefined : cuts[shard];
        if (shard > 0 && upper !== undefined && lower === upper) {
          yield { group: g, ids: [], exhausted: true, last: undefined };
          continue;
        }
        const range = { after: after ?? lower, to: upper };
        for await (const p of rangePages(db, group, range, doc.batch, known?.[g] ?? null)) {
          yield { group: g, ...p, last: p.ids[p.ids.length - 1] };
        }
      } else {
        const keep = (id: string) => shardOf(id, doc.shards) === shard;
        for await (const p of hashPages(db, group, after, doc.batch, keep)) yield { group: g, ...p };
      }
    }
  }

  const runShard = async (shard: number) => {
    let cp = checkpoints.get(shard)!;
    if (cp.done) return;
    const pages = pagesOf(shard, cp);
    // A page and its batched reads; the next one is started before the current one is diffed.
    const load = async () => {
      const next = await pages.next();
      if (next.done) return null;
      const page = next.value;
      return { page, clean: await cleanInBulk(db, groups[page.group]!.tables, page.ids) };
    };
    let pending = load();
    try {
      while (!stop.signal.aborted) {
        const loaded = await pending;
        if (!loaded) break;
        pending = load();
        const { page, clean } = loaded;
        const group = groups[page.group]!;
        const { counts, differences, conflicts } = await replayDirty(db, group.tables, page.ids, clean, {
          ...opts.entityOptions,
          repair: doc.repair,
        });
        const nextGroup = page.exhausted ? page.group + 1 : page.group;
        const merged = sumCounts([cp, counts]);
        cp = {
          ...merged,
          group: nextGroup,
          after: page.exhausted ? null : (page.last ?? cp.after),
          done: nextGroup >= groups.length,
        };
        await runs.checkpoint(runId, shard, cp, { differences, conflicts, max });
        checkpoints.set(shard, cp);
        session.checked += counts.checked;
        opts.onProgress?.(progress());
        if (cp.done) break;
      }
    } finally {
      // A page read ahead and not used (stopped, or failed): let its reads settle before the shard returns.
      await pending.catch(() => undefined);
      await pages.return(undefined);
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
