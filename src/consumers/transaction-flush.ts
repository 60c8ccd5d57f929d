// Exactly-once settling of a completed prefix: its records and its offset in one Kafka transaction.
// When the broker refuses a record outright (too large, not authorised, no such topic) the whole
// transaction is aborted, so nothing of it is visible; the prefix then goes one offset at a time, each
// offset's records with that offset in a transaction of their own, and an event whose transaction is
// refused is dead-lettered and its letter's records go in its place. Offsets commit in order either
// way: the records of an offset are visible exactly when the group's offset is past it.
import { classify, KeyflowError } from '../errors';
import type { WireRecord } from '../producers/types';
import type { CommitWindowDeps, Settled } from './commit-window';

type Deps = Pick<CommitWindowDeps, 'refused'> & Required<Pick<CommitWindowDeps, 'transact'>>;

/** The partition was fenced: another member owns it now. */
export function fenced(err: unknown): boolean {
  return err instanceof KeyflowError && err.code === 'PARTITION_FENCED';
}

/**
 * Commits `settled` (the prefix's entries) with `next` as the group's offset. Resolves `{ lost }` when
 * the partition was fenced; throws any other failure (the transaction was aborted).
 */
export async function transactPrefix(
  settled: Settled[],
  next: bigint,
  deps: Deps,
): Promise<{ lost?: unknown }> {
  try {
    await deps.transact(
      settled.flatMap((s) => s.records),
      next.toString(),
    );
    return {};
  } catch (err) {
    if (fenced(err)) return { lost: err };
    if (classify(err).retriable) throw err;
  }
  const byOffset = new Map<bigint, Settled[]>();
  for (const s of settled) {
    const o = BigInt(s.offset);
    byOffset.set(o, [...(byOffset.get(o) ?? []), s]);
  }
  const offsets = [...byOffset.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [i, o] of offsets.entries()) {
    // The last offset commits the prefix's own end (past trailing control records when it has one).
    const upTo = i === offsets.length - 1 ? next : o + 1n;
    const lost = await transactOne(byOffset.get(o)!, upTo.toString(), deps);
    if (lost) return { lost };
  }
  return {};
}

/** One offset's entries in a transaction; a refused event's letter records replace its own. */
async function transactOne(entries: Settled[], next: string, deps: Deps): Promise<unknown> {
  const records = (): WireRecord[] => entries.flatMap((s) => s.records);
  try {
    await deps.transact(records(), next);
    return undefined;
  } catch (err) {
    if (fenced(err)) return err;
    const e = classify(err);
    const refusable = entries.filter((s) => s.records.length > 0 && s.item);
    if (e.retriable || !deps.refused || refusable.length === 0) throw err;
    for (const s of refusable) {
      // The event's own records (and what was to follow them) are replaced by its letter.
      s.afterSend = undefined;
      s.records = await deps.refused(s.item!, e);
    }
  }
  try {
    await deps.transact(records(), next);
    return undefined;
  } catch (err) {
    if (fenced(err)) return err;
    throw err;
  }
}
