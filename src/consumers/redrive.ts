// `keyflow dlq replay`: re-drives dead letters into their key's lane. Letters go back to their original
// topic (same key, so same partition and lane) in their original order, marked for one stage only, so
// other stages reading that topic let them pass. Each page of letters is sent first and marked
// `redriven` after: a replay killed at any point leaves every unsent letter listed for the next run,
// and a letter sent twice applies once (the runner skips a re-drive whose letter is already resolved,
// and lets a re-driven event pass only when no earlier letter of its key is still open).
// A selection by code or time may pick a letter whose key has an earlier open letter it did not pick:
// the runner would only park that re-drive again, so it is not sent and is reported as held instead.
import type { Db } from 'mongodb';
import { HEADERS } from '../producers/headers';
import type { WireRecord } from '../producers/types';
import { deadLetters, listLetters, type DeadLetter } from '../state/dead-letters';
import { bySelection, selectLetters, type LetterSelection } from '../state/letter-selection';
import { pages } from '../state/pages';
import { KeyHolds, type HeldLetter } from './redrive-holds';

export interface RedriveOptions {
  db: Db;
  producer: { sendNow(records: WireRecord[]): Promise<void> };
  stage: string;
  key?: string;
  /** Only letters of these codes, or dead in this time range (with `key`, of that key only). */
  selection?: Omit<LetterSelection, 'key'>;
  /** At most this many letters in one run (default 10 000). */
  limit?: number;
  /** Letters read, sent and marked per step (default 500). */
  pageSize?: number;
  /** `redriven` letters untouched for this long are sent again (their re-drive may never have landed). */
  staleRedrivenMs?: number;
  /** After each page: how far the run is. */
  onProgress?: (p: { redriven: number; held: number }) => void;
}

export interface RedriveResult {
  redriven: number;
  /** Letters without a key cannot be re-driven into a lane; they stay for inspection. */
  skipped: { id: string; reason: string }[];
  /** Selected letters left parked: an earlier open letter of their key was not selected. */
  held: HeldLetter[];
}

export const REDRIVE_DEFAULT_LIMIT = 10_000;
export const DEFAULT_STALE_REDRIVEN_MS = 10 * 60 * 1000;

export async function redrive(opts: RedriveOptions): Promise<RedriveResult> {
  const limit = opts.limit ?? REDRIVE_DEFAULT_LIMIT;
  const pageSize = Math.max(1, Math.min(opts.pageSize ?? 500, limit));
  const staleRedrivenMs = opts.staleRedrivenMs ?? DEFAULT_STALE_REDRIVEN_MS;
  const result: RedriveResult = { redriven: 0, skipped: [], held: [] };
  const selection: LetterSelection = { key: opts.key, ...opts.selection };
  const selective = bySelection(selection);
  const read = (after: { partition: number; position: number } | undefined, size: number) =>
    listLetters(opts.db, opts.stage, {
      key: opts.key,
      status: ['parked', 'dead'],
      staleRedrivenMs,
      limit: size,
      after,
    });
  const cursor = (l: DeadLetter) => ({ partition: l.partition, position: l.position });
  const source = selective
    ? selectLetters(opts.db, opts.stage, selection, {
        status: ['parked', 'dead'],
        staleRedrivenMs,
        pageSize,
        limit,
      })
    : pages(read, { pageSize, cursor, limit });
  // A run that takes every open letter (of the stage, or of a key) leaves none behind to hold one.
  const holds = selective ? new KeyHolds(opts.db, opts.stage, staleRedrivenMs) : undefined;
  for await (const page of source) {
    let ready = page.filter((l) => {
      if (l.key === null) {
        result.skipped.push({ id: l._id, reason: 'no key: a message without a key has no lane' });
      }
      return l.key !== null;
    });
    if (holds) {
      const split = await holds.split(ready);
      ready = split.go;
      result.held.push(...split.held);
    }
    if (ready.length > 0) {
      await opts.producer.sendNow(ready.map(redriveRecord(opts.stage)));
      await markRedriven(opts.db, ready);
      result.redriven += ready.length;
    }
    opts.onProgress?.({ redriven: result.redriven, held: result.held.length });
  }
  return result;
}

function redriveRecord(stage: string) {
  return (l: DeadLetter): WireRecord => ({
    topic: l.topic,
    // Back to the very partition it came from: the key's lane, whatever partitioner upstream used.
    partition: l.partition,
    key: l.key!,
    value: l.value ? Buffer.from(l.value.buffer) : null,
    eventId: l.eventId,
    headers: { ...l.headers, [HEADERS.REDRIVE_STAGE]: stage, [HEADERS.REDRIVE_LETTER]: l._id },
  });
}

/**
 * Marks sent letters `redriven`, each only if untouched since it was listed: the runner may already
 * have resolved it, or parked it again, and that newer word must stand.
 */
async function markRedriven(db: Db, sent: DeadLetter[]): Promise<void> {
  const now = new Date();
  await deadLetters(db).bulkWrite(
    sent.map((l) => ({
      updateOne: {
        filter: { _id: l._id, status: l.status, updatedAt: l.updatedAt },
        update: { $set: { status: 'redriven' as const, updatedAt: now }, $inc: { redrives: 1 } },
      },
    })),
    { ordered: false },
  );
}
