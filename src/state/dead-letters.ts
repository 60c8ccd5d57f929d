// Dead letters: the `<stage>.dlq` topic keeps the original key, bytes and headers plus why it died;
// the `keyflow_dead_letters` collection keeps each letter's state (parked, redriven, resolved) so a
// stage knows which keys wait behind a letter and `keyflow dlq replay` can re-drive them in order.
import { Binary, type Collection, type Db } from 'mongodb';
import { HEADERS } from '../producers/headers';
import type { WireRecord } from '../producers/types';
import type { CollectionIndexes } from './mongo';
import { dlqTopicName } from '../topology/define';

export type LetterStatus = 'parked' | 'dead' | 'redriven' | 'resolved';

export interface DeadLetter {
  _id: string;
  stage: string;
  key: string | null;
  eventId: string;
  topic: string;
  partition: number;
  offset: string;
  /** Numeric offset, for ordering (offsets are decimal strings on the wire). */
  position: number;
  value: Binary | null;
  headers: Record<string, string>;
  code: string;
  message: string;
  attempts: number;
  firstFailedAt: Date;
  deadAt: Date;
  status: LetterStatus;
  updatedAt: Date;
  redrives: number;
}

export const DEAD_LETTERS = 'keyflow_dead_letters';

export function deadLetters(db: Db): Collection<DeadLetter> {
  return db.collection<DeadLetter>(DEAD_LETTERS);
}

export const DEAD_LETTER_INDEXES: CollectionIndexes = {
  collection: DEAD_LETTERS,
  indexes: [
    { key: { stage: 1, status: 1, key: 1 }, name: 'stage_status_key' },
    { key: { stage: 1, key: 1, partition: 1, position: 1 }, name: 'stage_key_position' },
    // A key's open letters (equalities, then the status list): a planner that wants every predicate
    // covered in index order (SecantusDB) reads it whole.
    { key: { stage: 1, key: 1, status: 1 }, name: 'stage_key_status' },
  ],
};

export function letterId(stage: string, topic: string, partition: number, offset: string): string {
  return `${stage}:${topic}:${partition}:${offset}`;
}

/** Statuses in which a letter still holds its key back. */
export const OPEN_STATUSES: LetterStatus[] = ['parked', 'redriven'];

export interface LetterInput {
  id: string;
  stage: string;
  key: string | null;
  eventId: string;
  topic: string;
  partition: number;
  offset: string;
  value: Buffer | null;
  headers: Record<string, string>;
  code: string;
  message: string;
  attempts: number;
  firstFailedAt: number;
  status: 'parked' | 'dead';
}

/**
 * Upserts letters, in one unordered bulk write (letters have distinct ids). A redelivery, or a
 * re-driven event that fails again, updates the same letter: its original position is kept, so a later
 * replay still re-drives the key's letters in order.
 */
export async function recordLetters(db: Db, letters: readonly LetterInput[]): Promise<void> {
  if (letters.length === 0) return;
  const now = new Date();
  await deadLetters(db).bulkWrite(
    letters.map((l) => ({
      updateOne: { filter: { _id: l.id }, update: letterUpdate(l, now), upsert: true },
    })),
    { ordered: false },
  );
}

function letterUpdate(l: LetterInput, now: Date) {
  return {
    $set: {
      code: l.code,
      message: l.message,
      attempts: l.attempts,
      deadAt: now,
      status: l.status,
      updatedAt: now,
    },
    $setOnInsert: {
      stage: l.stage,
      key: l.key,
      eventId: l.eventId,
      topic: l.topic,
      partition: l.partition,
      offset: l.offset,
      position: Number(l.offset),
      value: l.value ? new Binary(l.value) : null,
      headers: l.headers,
      firstFailedAt: new Date(l.firstFailedAt),
      redrives: 0,
    },
  };
}

/** The `<stage>.dlq` record: original key, bytes and headers, plus the reason and origin. */
export function dlqRecord(l: LetterInput): WireRecord {
  return {
    topic: dlqTopicName(l.stage),
    key: l.key ?? '',
    value: l.value,
    eventId: l.eventId,
    headers: {
      ...l.headers,
      [HEADERS.DLQ_CODE]: l.code,
      [HEADERS.DLQ_MESSAGE]: l.message.slice(0, 2000),
      [HEADERS.DLQ_STAGE]: l.stage,
      [HEADERS.DLQ_ATTEMPTS]: String(l.attempts),
      [HEADERS.DLQ_TOPIC]: l.topic,
      [HEADERS.DLQ_PARTITION]: String(l.partition),
      [HEADERS.DLQ_OFFSET]: l.offset,
      [HEADERS.DLQ_FIRST_FAILED_AT]: new Date(l.firstFailedAt).toISOString(),
      [HEADERS.DLQ_DEAD_AT]: new Date().toISOString(),
      [HEADERS.REDRIVE_LETTER]: l.id,
    },
  };
}

export async function openKeys(db: Db, stage: string): Promise<string[]> {
  const keys = await deadLetters(db).distinct('key', { stage, status: { $in: OPEN_STATUSES } });
  return keys.filter((k): k is string => typeof k === 'string');
}

export async function resolveLetter(db: Db, id: string): Promise<void> {
  await deadLetters(db).updateOne({ _id: id }, { $set: { status: 'resolved', updatedAt: new Date() } });
}

export async function hasOpenLetters(db: Db, stage: string, key: string): Promise<boolean> {
  return (
    (await deadLetters(db).countDocuments({ stage, key, status: { $in: OPEN_STATUSES } }, { limit: 1 })) > 0
  );
}

/** True when a letter of the key waits un-redriven: a re-driven event of that key must wait too. */
export async function hasParkedLetters(db: Db, stage: string, key: string): Promise<boolean> {
  return (await deadLetters(db).countDocuments({ stage, key, status: 'parked' }, { limit: 1 })) > 0;
}

export interface ListOptions {
  key?: string;
  status?: LetterStatus[];
  limit?: number;
}

/** Letters of a stage in their original order (partition, offset). */
export async function listLetters(db: Db, stage: string, opts: ListOptions = {}): Promise<DeadLetter[]> {
  const filter: Record<string, unknown> = { stage };
  if (opts.key !== undefined) filter.key = opts.key;
  if (opts.status) filter.status = { $in: opts.status };
  return deadLetters(db)
    .find(filter)
    .sort({ partition: 1, position: 1 })
    .limit(opts.limit ?? 1000)
    .toArray();
}

/** The dead-letter store as the stage runner sees it (consumers/parked-keys.ts), backed by MongoDB. */
export function mongoLetterStore(db: Db) {
  return {
    record: (inputs: readonly LetterInput[]) => recordLetters(db, inputs),
    openKeys: (stage: string) => openKeys(db, stage),
    hasOpenLetters: (stage: string, key: string) => hasOpenLetters(db, stage, key),
    hasParkedLetters: (stage: string, key: string) => hasParkedLetters(db, stage, key),
    resolveLetter: (id: string) => resolveLetter(db, id),
  };
}
