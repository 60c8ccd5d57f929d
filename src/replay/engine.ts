// Replays one entity: recomputes each of its tables from the archived events with the live reducers,
// compares with the stored rows, and with `repair` writes the recomputed rows and checks again.
import { retrying } from '../consumers/retry';
import type { Db } from 'mongodb';
import { classify, KeyflowError } from '../errors';
import { diffRows } from './diff';
import type { Difference, ReplayTable, Row } from './types';

export interface ReplayEntityOptions {
  repair?: boolean;
  /** Only the tables of this entity kind (a table's `entity`); every table when absent. */
  entity?: string;
  /** Repair attempts against concurrent live updates before reporting a conflict (default 4). */
  attempts?: number;
  /** Wait before the second attempt, doubled for each later one (default 50ms). */
  backoffMs?: number;
}

/**
 * clean: no difference. differs: differences, not repairing. repaired: none left after repair.
 * unrepaired: the repair ran and differences remain (a faulty repair, or an event that arrived meanwhile).
 * conflict: every attempt met a concurrent live update; the row was left to the live stage.
 */
export type TableStatus = 'clean' | 'differs' | 'repaired' | 'unrepaired' | 'conflict';

export interface TableOutcome {
  table: string;
  kind: ReplayTable['kind'];
  status: TableStatus;
  found: number;
  remaining: number;
  attempts: number;
}

export interface Conflict {
  entityId: string;
  table: string;
  attempts: number;
  message: string;
}

export interface EntityReport {
  entityId: string;
  repair: boolean;
  tables: TableOutcome[];
  /** Differences of the first comparison. */
  found: Difference[];
  /** Differences left: after repair when repairing, else the same as `found`. */
  differences: Difference[];
  conflicts: Conflict[];
  durationMs: number;
}

/** Failures that mean "a live update got there first": re-read, and try again. */
const RACING = new Set(['HANDLER_TRANSIENT', 'LEASE_BUSY']);
const MAX_BACKOFF_MS = 2000;

/** Derived tables first, temporal next (a temporal row may read a derived one); otherwise as declared. */
export function replayOrder(tables: readonly ReplayTable[], entity?: string): ReplayTable[] {
  const chosen = tables.filter((t) => entity === undefined || t.entity === entity);
  return [...chosen.filter((t) => t.kind === 'derived'), ...chosen.filter((t) => t.kind === 'temporal')];
}

interface Check {
  expected: Row[];
  actual: Row[];
  differences: Difference[];
}

async function check(db: Db, table: ReplayTable, entityId: string): Promise<Check> {
  let expected: Row[];
  let actual: Row[];
  try {
    [expected, actual] = await Promise.all([table.expected(db, entityId), table.actual(db, entityId)]);
  } catch (err) {
    throw failure(err, table, entityId, 'check');
  }
  const differences = diffRows({ entityId, table: table.table, fields: table.fields, expected, actual });
  return { expected, actual, differences };
}

function failure(err: unknown, table: ReplayTable, entityId: string, step: string): KeyflowError {
  const e = classify(err);
  return new KeyflowError(e.code, `replay ${step} of ${table.table} for ${entityId}: ${e.message}`, {
    retriable: e.retriable,
    cause: err,
    details: { table: table.table, entityId, ...e.details },
  });
}

/** Tables already prepared on a database (their history built), so each is prepared once per process. */
const prepared = new WeakMap<Db, Set<string>>();

/** Readies each table's reads (see ReplayTable.prepare) once per database and process. */
export async function prepareTables(db: Db, tables: readonly ReplayTable[]): Promise<void> {
  let done = prepared.get(db);
  if (!done) prepared.set(db, (done = new Set()));
  for (const t of tables) {
    if (!t.prepare || done.has(t.table)) continue;
    await t.prepare(db);
    done.add(t.table);
  }
}

/**
 * Repairs one table of an entity, retrying with backoff while a live update gets there first (RACING),
 * and checks again. The retry loop is this one function, so the shared retry-with-backoff helper can
 * replace it in one place.
 */
async function repairWithRetry(
  db: Db,
  table: ReplayTable,
  entityId: string,
  first: Check,
  opts: { attempts: number; backoffMs: number },
): Promise<{ state: Check; attempts: number; conflict?: Conflict }> {
  let state = first;
  let attempts = 0;
  let settled = false;
  try {
    await retrying(
      async (attempt) => {
        attempts = attempt;
        if (attempt > 1) {
          // What the live update wrote is the new starting point; it may even have settled the drift.
          state = await check(db, table, entityId);
          if (state.differences.length === 0) return void (settled = true);
        }
        await table.repair(db, entityId, state.expected, state.actual);
      },
      {
        policy: { baseMs: opts.backoffMs, maxMs: MAX_BACKOFF_MS, maxAttempts: opts.attempts, jitter: false },
        boundedAttempts: true,
        retriable: (err) => RACING.has(classify(err).code),
      },
    );
  } catch (err) {
    const e = classify(err);
    if (!RACING.has(e.code)) throw failure(err, table, entityId, 'repair');
    const conflict = { entityId, table: table.table, attempts, message: e.message };
    return { state: await check(db, table, entityId), attempts, conflict };
  }
  if (settled) return { state, attempts: attempts - 1 };
  return { state: await check(db, table, entityId), attempts };
}

export async function replayEntity(
  db: Db,
  tables: readonly ReplayTable[],
  entityId: string,
  opts: ReplayEntityOptions = {},
): Promise<EntityReport> {
  const started = Date.now();
  const repair = opts.repair ?? false;
  const attempts = Math.max(1, opts.attempts ?? 4);
  const backoffMs = opts.backoffMs ?? 50;
  const report: EntityReport = {
    entityId,
    repair,
    tables: [],
    found: [],
    differences: [],
    conflicts: [],
    durationMs: 0,
  };

  await prepareTables(db, tables);
  // Sequential on purpose: a temporal table's expected rows may read a derived table repaired just before.
  for (const table of replayOrder(tables, opts.entity)) {
    let state = await check(db, table, entityId);
    const outcome: TableOutcome = {
      table: table.table,
      kind: table.kind,
      status: state.differences.length ? 'differs' : 'clean',
      found: state.differences.length,
      remaining: state.differences.length,
      attempts: 0,
    };
    report.found.push(...state.differences);
    if (repair && state.differences.length) {
      const done = await repairWithRetry(db, table, entityId, state, { attempts, backoffMs });
      state = done.state;
      outcome.attempts = done.attempts;
      if (done.conflict) {
        outcome.status = 'conflict';
        report.conflicts.push(done.conflict);
      }
      outcome.remaining = state.differences.length;
      if (outcome.status !== 'conflict') outcome.status = outcome.remaining ? 'unrepaired' : 'repaired';
    }
    report.differences.push(...state.differences);
    report.tables.push(outcome);
  }
  report.durationMs = Date.now() - started;
  return report;
}
