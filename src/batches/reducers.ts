// The pure semantics of BatchAssets and of a Batch's counts. The fold stage and any replay call these;
// nothing here does I/O.
import type { AssetStatus, BatchStatus } from './schemas';

export interface RowState {
  status: AssetStatus;
  error: string | null;
  finished: number | null;
}

/**
 * The row after one batch-status record. The last state wins, "last" meaning the later finished time
 * (a waiting record never undoes a finished one), so the result does not depend on how often or in
 * which order the records arrive. Returns null when the record changes nothing (a duplicate or older).
 */
export function foldStatus(current: RowState, incoming: BatchStatus): RowState | null {
  const next: RowState = {
    status: incoming.status,
    error: incoming.status === 'error' ? (incoming.error ?? 'unknown error') : null,
    finished: incoming.status === 'waiting' ? null : incoming.finished,
  };
  if (next.status === 'waiting') return null;
  if (current.status !== 'waiting') {
    const now = current.finished ?? 0;
    const then = next.finished ?? 0;
    // Two different outcomes at the same instant: order them by content so every replica picks the same.
    if (then < now) return null;
    if (then === now && `${next.status}\u0000${next.error}` <= `${current.status}\u0000${current.error}`) {
      return null;
    }
  }
  return next;
}

/** A group of a batch's rows as the count query returns it: one per status. */
export interface StatusTally {
  status: AssetStatus;
  rows: number;
  superseded: number;
  lastFinished: number | null;
}

export interface BatchCounts {
  count: number;
  completed: number;
  errors: number;
  superseded: number;
  /** When the last row finished, once no row is waiting; null before. */
  finished: number | null;
}

/** A batch's counts, derived from its BatchAssets rows (never incremented). */
export function deriveCounts(tallies: StatusTally[]): BatchCounts {
  const counts: BatchCounts = { count: 0, completed: 0, errors: 0, superseded: 0, finished: null };
  let waiting = 0;
  let last: number | null = null;
  for (const t of tallies) {
    counts.count += t.rows;
    counts.superseded += t.superseded;
    if (t.status === 'completed') counts.completed += t.rows;
    else if (t.status === 'error') counts.errors += t.rows;
    else waiting += t.rows;
    if (t.lastFinished !== null && (last === null || t.lastFinished > last)) last = t.lastFinished;
  }
  if (waiting === 0 && counts.count > 0) counts.finished = last;
  return counts;
}
