// Cleanup of BatchAssets with a strategy the API consumer picks: rows that completed without error,
// rows older than N days, or rows superseded by a later batch of the same asset. Only rows of finished
// batches go, because a running batch's counts are still derived from its rows; a dry run only reports.
import type { Db, Filter } from 'mongodb';
import type { Logger } from '../logger';
import type { CleanupStrategy } from './schemas';
import { batchesOf, rowsOf, type BatchAssetRow } from './store';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Finished batches handled per round; bounds the `$in` list of one query. */
const BATCHES_PER_ROUND = 500;
/** Rows a dry run lists by id; the count covers all of them. */
const SAMPLE_LIMIT = 1000;

export interface CleanupOptions {
  strategy: CleanupStrategy;
  /** Required by 'older-than'. */
  days?: number;
  dryRun: boolean;
  /** Limits the run to one customer; the scheduled run covers all. */
  customerId?: string;
  now: number;
}

export interface CleanupReport {
  strategy: CleanupStrategy;
  days: number | null;
  dryRun: boolean;
  /** Rows that match (and, unless a dry run, were removed). */
  matched: number;
  removed: number;
  /** Up to 1000 of the matching rows, by id. */
  rows: { batchId: number; assetId: string }[];
}

/** Which rows a strategy removes, before the finished-batch restriction. Pure. */
export function strategyFilter(
  strategy: CleanupStrategy,
  days: number | undefined,
  now: number,
): Filter<BatchAssetRow> {
  if (strategy === 'completed') return { status: 'completed' };
  if (strategy === 'superseded') return { supersededBy: { $ne: null } };
  return { finished: { $lt: new Date(now - (days ?? 0) * DAY_MS) } };
}

export async function cleanupBatchAssets(db: Db, opts: CleanupOptions): Promise<CleanupReport> {
  const report: CleanupReport = {
    strategy: opts.strategy,
    days: opts.days ?? null,
    dryRun: opts.dryRun,
    matched: 0,
    removed: 0,
    rows: [],
  };
  const which = strategyFilter(opts.strategy, opts.days, opts.now);
  const owner = opts.customerId !== undefined ? { customerId: opts.customerId } : {};
  // A range rather than `$ne: null` (finished is a Date once set), so the index reads it as one.
  const finished = batchesOf(db)
    .find({ ...owner, finished: { $gte: new Date(0) } }, { projection: { _id: 1 } })
    .sort({ _id: 1 });
  let ids: number[] = [];
  const round = async () => {
    const filter: Filter<BatchAssetRow> = { ...owner, batchId: { $in: ids }, ...which };
    const sampleRoom = SAMPLE_LIMIT - report.rows.length;
    if (sampleRoom > 0) {
      const sample = await rowsOf(db)
        .find(filter, { projection: { batchId: 1, assetId: 1 } })
        .sort({ batchId: 1, assetId: 1 })
        .limit(sampleRoom)
        .toArray();
      report.rows.push(...sample.map((r) => ({ batchId: r.batchId, assetId: r.assetId })));
    }
    if (opts.dryRun) {
      report.matched += await rowsOf(db).countDocuments(filter);
    } else {
      const { deletedCount } = await rowsOf(db).deleteMany(filter);
      report.matched += deletedCount;
      report.removed += deletedCount;
    }
    ids = [];
  };
  for await (const b of finished) {
    ids.push(b._id);
    if (ids.length >= BATCHES_PER_ROUND) await round();
  }
  if (ids.length) await round();
  return report;
}

export interface CleanupSchedule {
  strategy: CleanupStrategy | 'off';
  days?: number;
  intervalMs: number;
}

/** Runs the configured cleanup for every customer every `intervalMs`; stop() is safe twice. */
export function scheduleCleanup(db: Db, schedule: CleanupSchedule, log: Logger): { stop(): void } {
  if (schedule.strategy === 'off') return { stop() {} };
  const strategy = schedule.strategy;
  let running = false;
  const timer = setInterval(() => {
    if (running) return; // a slow run is not stacked on by the next tick
    running = true;
    cleanupBatchAssets(db, { strategy, days: schedule.days, dryRun: false, now: Date.now() })
      .then((r) => log.info({ strategy, removed: r.removed }, 'scheduled BatchAssets cleanup done'))
      .catch((err) => log.error({ err, strategy }, 'scheduled BatchAssets cleanup failed'))
      .finally(() => {
        running = false;
      });
  }, schedule.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
