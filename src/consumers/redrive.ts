// `keyflow dlq replay`: re-drives dead letters into their key's lane. Letters go back to their original
// topic (same key, so same partition and lane) in their original order, marked for one stage only, so
// other stages reading that topic let them pass. Every letter is marked `redriven` before any is sent,
// so the runner does not mistake the batch's own letters for an earlier parked one.
import type { Db } from 'mongodb';
import { HEADERS } from '../producers/headers';
import type { WireRecord } from '../producers/types';
import { deadLetters, listLetters } from '../state/dead-letters';

export interface RedriveOptions {
  db: Db;
  producer: { sendNow(records: WireRecord[]): Promise<void> };
  stage: string;
  key?: string;
  limit?: number;
}

export interface RedriveResult {
  redriven: number;
  /** Letters without a key cannot be re-driven into a lane; they stay for inspection. */
  skipped: { id: string; reason: string }[];
}

export async function redrive(opts: RedriveOptions): Promise<RedriveResult> {
  const letters = await listLetters(opts.db, opts.stage, {
    key: opts.key,
    status: ['parked', 'dead'],
    limit: opts.limit ?? 10_000,
  });
  const skipped: RedriveResult['skipped'] = [];
  const ready = letters.filter((l) => {
    if (l.key === null) skipped.push({ id: l._id, reason: 'no key: a message without a key has no lane' });
    return l.key !== null;
  });
  if (ready.length === 0) return { redriven: 0, skipped };
  const ids = ready.map((l) => l._id);
  const previous = new Map(ready.map((l) => [l._id, l.status]));
  await deadLetters(opts.db).updateMany(
    { _id: { $in: ids } },
    { $set: { status: 'redriven', updatedAt: new Date() }, $inc: { redrives: 1 } },
  );
  const records: WireRecord[] = ready.map((l) => ({
    topic: l.topic,
    // Back to the very partition it came from: the key's lane, whatever partitioner upstream used.
    partition: l.partition,
    key: l.key!,
    value: l.value ? Buffer.from(l.value.buffer) : null,
    eventId: l.eventId,
    headers: { ...l.headers, [HEADERS.REDRIVE_STAGE]: opts.stage, [HEADERS.REDRIVE_LETTER]: l._id },
  }));
  try {
    await opts.producer.sendNow(records);
  } catch (err) {
    // Nothing was re-driven for sure: put the letters back as they were so a later replay picks them up.
    for (const [id, status] of previous) {
      await deadLetters(opts.db).updateOne({ _id: id, status: 'redriven' }, { $set: { status } });
    }
    throw err;
  }
  return { redriven: ready.length, skipped };
}
