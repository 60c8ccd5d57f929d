// `keyflow dlq replay`: re-drives dead letters into their key's lane. Letters go back to their original
// topic (same key, so same partition and lane) in their original order, marked for one stage only, so
// other stages reading that topic let them pass. Each page of letters is sent first and marked
// `redriven` after: a replay killed at any point leaves every unsent letter listed for the next run,
// and a letter sent twice applies once (the runner skips a re-drive whose letter is already resolved,
// and lets a re-driven event pass only when no earlier letter of its key is still open).
import type { Db } from 'mongodb';
import { HEADERS } from '../producers/headers';
import type { WireRecord } from '../producers/types';
import { deadLetters, listLetters, type DeadLetter } from '../state/dead-letters';
import { pages } from '../state/pages';

export interface RedriveOptions {
  db: Db;
  producer: { sendNow(records: WireRecord[]): Promise<void> };
  stage: string;
  key?: string;
  /** At most this many letters in one run (default 10 000). */
  limit?: number;
  /** Letters read, sent and marked per step (default 500). */
  pageSize?: number;
  /** `redriven` letters untouched for this long are sent again (their re-drive may never have landed). */
  staleRedrivenMs?: number;
}

export interface RedriveResult {
  redriven: number;
  /** Letters without a key cannot be re-driven into a lane; they stay for inspection. */
  skipped: { id: string; reason: string }[];
}

export const REDRIVE_DEFAULT_LIMIT = 10_000;
export const DEFAULT_STALE_REDRIVEN_MS = 10 * 60 * 1000;

export async function redrive(opts: RedriveOptions): Promise<RedriveResult> {
  const limit = opts.limit ?? REDRIVE_DEFAULT_LIMIT;
  const pageSize = Math.max(1, Math.min(opts.pageSize ?? 500, limit));
  const skipped: RedriveResult['skipped'] = [];
  let redriven = 0;
  const read = (after: { partition: number; position: number } | undefined, size: number) =>
    listLetters(opts.db, opts.stage, {
      key: opts.key,
      status: ['parked', 'dead'],
      staleRedrivenMs: opts.staleRedrivenMs ?? DEFAULT_STALE_REDRIVEN_MS,
      limit: size,
      after,
    });
  const cursor = (l: DeadLetter) => ({ partition: l.partition, position: l.position });
  for await (const page of pages(read, { pageSize, cursor, limit })) {
    const ready = page.filter((l) => {
      if (l.key === null) skipped.push({ id: l._id, reason: 'no key: a message without a key has no lane' });
      return l.key !== null;
    });
    if (ready.length === 0) continue;
    await opts.producer.sendNow(ready.map(redriveRecord(opts.stage)));
    await markRedriven(opts.db, ready);
    redriven += ready.length;
  }
  return { redriven, skipped };
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
