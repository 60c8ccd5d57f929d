// A counter slot's pending entries (see fold-stage.ts): the transitions a slot counted whose rows may not
// be written yet, how one is written down, and how the next fold of its row reads it back. Pure.
import type { RowState } from './reducers';
import { ASSET_STATUSES } from './schemas';

/** A row's transition as the slots of the first release listed it: the row and the state it moved to. */
export function transitionId(rowId: string, to: RowState): string {
  return `${rowId}|${to.status}|${to.finished ?? ''}|${to.error ?? ''}`;
}

/**
 * A transition a slot counted whose row may not be written yet: the row's counted state went from
 * `from` to `to`, and its write is guarded on `base`, the row as stored then. Entries of the first
 * release (`transitionId`) name only `to`.
 */
export interface PendingEntry {
  rowId: string;
  from: RowState | null;
  to: RowState;
  base: RowState | null;
}

type Packed = [RowState['status'], number | null, string | null];
const pack = (s: RowState): Packed => [s.status, s.finished, s.error];
const unpack = ([status, finished, error]: Packed): RowState => ({ status, finished, error });

export function encodeEntry(e: PendingEntry & { from: RowState; base: RowState }): string {
  return JSON.stringify({ r: e.rowId, f: pack(e.from), t: pack(e.to), b: pack(e.base) });
}

/** The entry, if it is one of this row's (asset ids have no `|`, so a first-release id parses whole). */
export function entryOf(rowId: string, raw: string): PendingEntry | null {
  if (raw.startsWith('{')) {
    const j = JSON.parse(raw) as { r: string; f: Packed; t: Packed; b: Packed };
    return j.r === rowId ? { rowId, from: unpack(j.f), to: unpack(j.t), base: unpack(j.b) } : null;
  }
  if (!raw.startsWith(`${rowId}|`)) return null;
  const m = /^([a-z]+)\|(\d*)\|(.*)$/s.exec(raw.slice(rowId.length + 1));
  if (!m || !(ASSET_STATUSES as readonly string[]).includes(m[1]!)) return null;
  const to: RowState = {
    status: m[1] as RowState['status'],
    finished: m[2] === '' ? null : Number(m[2]),
    error: m[3] === '' ? null : m[3]!,
  };
  return { rowId, from: null, to, base: null };
}

export const sameState = (a: RowState, b: RowState) =>
  a.status === b.status && a.finished === b.finished && a.error === b.error;

/** A row as the slots have counted it, from the row as stored and this partition's slot. */
export interface Counted {
  /** The state counted: the fold goes on from here (the stored one, or an unwritten entry's `to`). */
  counted: RowState;
  /** Where the counting not yet written to the row began: a new entry's `from`. */
  origin: RowState;
  /** This slot's entries of the row, to leave `pending` (settled, replaced or counted back). */
  drop: string[];
  /** An entry whose row write was lost to another writer: its counting is reversed, `to` back to `from`. */
  undo: { from: RowState; to: RowState } | null;
}

/**
 * Reads a row's entries in this partition's slot against the row as stored. Written (the row holds the
 * entry's state, and this slot stamped it): settled. Not written (the row still holds the entry's
 * base): counted, so the fold goes on from the entry's state and its row write is still owed. Otherwise
 * another writer moved the row in between, after reading it without this entry: the entry is undone.
 */
export function reconcile(
  rowId: string,
  stored: RowState,
  countedIn: string | undefined,
  slot: string,
  pending: readonly string[],
): Counted {
  const mine = pending.map((raw) => ({ raw, e: entryOf(rowId, raw) })).filter((x) => x.e !== null);
  const plain: Counted = { counted: stored, origin: stored, drop: [], undo: null };
  const last = mine.at(-1)?.e;
  if (!last) return plain;
  const drop = mine.map((x) => x.raw);
  if (sameState(stored, last.to) && (countedIn === undefined || countedIn === slot)) {
    return { ...plain, drop };
  }
  if (last.base === null || sameState(stored, last.base)) {
    return { counted: last.to, origin: last.from ?? stored, drop, undo: null };
  }
  // Stamped by this slot, the row's state was counted here on the way to `to` (a former owner's late
  // write of an earlier step): only the rest is undone. Stamped by another slot, all of it is.
  if (countedIn === slot) return { ...plain, drop, undo: { from: stored, to: last.to } };
  return { ...plain, drop, undo: last.from ? { from: last.from, to: last.to } : null };
}
