// Letters chosen by what an operator knows after fixing one cause: an error code, a time range of
// `deadAt`, a key, any of them together. With a key, the key's own letters are read and checked; without
// one, the code-and-time index (letter-index.ts) names the candidates and each is read by `_id`. Either
// way the letters come in their original order (partition, offset), so a key's letters stay in order.
import type { Db } from 'mongodb';
import {
  deadLetters,
  letterOrigin,
  listLetters,
  resolvedFields,
  type DeadLetter,
  type LetterStatus,
} from './dead-letters';
import { chunks } from './chunks';
import { IN_CHUNK, indexedLetterIds, sweepLetterIndex } from './letter-index';
import { pages } from './pages';

export interface LetterSelection {
  key?: string;
  /** Any of these codes. */
  codes?: readonly string[];
  /** `deadAt` at or after this. */
  since?: Date;
  /** `deadAt` before this. */
  until?: Date;
}

/** Whether the selection names a code or a time (the key alone is the plain listing). */
export function bySelection(s: LetterSelection): boolean {
  return s.codes !== undefined || s.since !== undefined || s.until !== undefined;
}

export function selects(s: LetterSelection, l: DeadLetter): boolean {
  if (s.key !== undefined && l.key !== s.key) return false;
  if (s.codes && !s.codes.includes(l.code)) return false;
  if (s.since && l.deadAt < s.since) return false;
  if (s.until && l.deadAt >= s.until) return false;
  return true;
}

export interface SelectOptions {
  status: readonly LetterStatus[];
  /** Also `redriven` letters untouched this long (their re-drive may never have arrived). */
  staleRedrivenMs?: number;
  /** Letters per page (default 500). */
  pageSize?: number;
  /** At most this many letters in all. */
  limit?: number;
}

function inStatus(opts: SelectOptions, now: number): (l: DeadLetter) => boolean {
  return (l) =>
    opts.status.includes(l.status) ||
    (opts.staleRedrivenMs !== undefined &&
      l.status === 'redriven' &&
      l.updatedAt.getTime() < now - opts.staleRedrivenMs);
}

/** Pages of the stage's letters the selection picks, in their original order. */
export async function* selectLetters(
  db: Db,
  stage: string,
  sel: LetterSelection,
  opts: SelectOptions,
): AsyncGenerator<DeadLetter[]> {
  const pageSize = opts.pageSize ?? 500;
  let left = opts.limit ?? Infinity;
  const status = inStatus(opts, Date.now());
  const take = (page: DeadLetter[]) => {
    const picked = page.filter((l) => status(l) && selects(sel, l)).slice(0, left);
    left -= picked.length;
    return picked;
  };
  if (sel.key !== undefined) {
    const read = (after: { partition: number; position: number } | undefined, size: number) =>
      listLetters(db, stage, {
        key: sel.key,
        status: [...opts.status],
        staleRedrivenMs: opts.staleRedrivenMs,
        limit: size,
        after,
      });
    const cursor = (l: DeadLetter) => ({ partition: l.partition, position: l.position });
    for await (const page of pages(read, { pageSize, cursor })) {
      const picked = take(page);
      if (picked.length > 0) yield picked;
      if (left <= 0) return;
    }
    return;
  }
  const ids = await indexedLetterIds(db, stage, sel);
  for (const run of chunks(inOriginalOrder(ids), Math.min(pageSize, IN_CHUNK))) {
    const found = new Map(
      (
        await deadLetters(db)
          .find({ _id: { $in: run } })
          .toArray()
      ).map((l) => [l._id, l]),
    );
    // A letter swept since it was indexed is simply gone; one of another stage cannot share its id.
    const picked = take(run.flatMap((id) => found.get(id) ?? []).filter((l) => l.stage === stage));
    if (picked.length > 0) yield picked;
    if (left <= 0) return;
  }
}

/** Letter ids sorted as their letters are listed: by partition, then offset (ids carry both). */
function inOriginalOrder(ids: string[]): string[] {
  const at = new Map(ids.map((id) => [id, letterOrigin(id) ?? { partition: Infinity, position: Infinity }]));
  return [...ids].sort((a, b) => {
    const x = at.get(a)!;
    const y = at.get(b)!;
    return x.partition - y.partition || x.position - y.position || (a < b ? -1 : a > b ? 1 : 0);
  });
}

export interface DiscardSelectedOptions {
  by: string;
  reason: string;
  retentionMs: number;
  limit?: number;
  /** After each page: letters discarded so far. */
  onProgress?: (discarded: number) => void;
}

/**
 * Discards every unresolved letter the selection picks. Each update names the letter by `_id` alone (a
 * guard on its status would make mongo-java-server scan): a letter the runner resolved or parked again
 * meanwhile ends resolved with the operator's reason, which is what the operator asked for; a later
 * write of the runner's still stands.
 */
export async function discardSelected(
  db: Db,
  stage: string,
  sel: LetterSelection,
  opts: DiscardSelectedOptions,
): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  const selected = selectLetters(db, stage, sel, {
    status: ['parked', 'dead', 'redriven'],
    limit: opts.limit,
  });
  for await (const page of selected) {
    const now = new Date();
    const set = {
      ...resolvedFields(opts.retentionMs, now),
      discarded: { by: opts.by, reason: opts.reason, at: now },
    };
    await deadLetters(db).bulkWrite(
      page.map((l) => ({ updateOne: { filter: { _id: l._id }, update: { $set: set } } })),
      { ordered: false },
    );
    out.push(...page.map((l) => ({ ...l, ...set })));
    opts.onProgress?.(out.length);
  }
  return out;
}

/** Sweeps the code-and-time index of buckets older than `retentionMs` holding no unresolved letter. */
export function sweepIndexedLetters(db: Db, retentionMs: number, now = Date.now()): Promise<number> {
  return sweepLetterIndex(db, new Date(now - retentionMs), async (ids) => {
    const open = new Set<string>();
    for (const run of chunks(ids, IN_CHUNK)) {
      const found = await deadLetters(db)
        .find({ _id: { $in: run } }, { projection: { status: 1 } })
        .toArray();
      for (const l of found) if (l.status !== 'resolved') open.add(l._id);
    }
    return open;
  });
}
