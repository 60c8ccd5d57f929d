// Dead letters: the `<stage>.dlq` topic keeps the original key, bytes and headers plus why it died;
// the `keyflow_dead_letters` collection keeps each letter's state (parked, redriven, resolved) so a
// stage knows which keys wait behind a letter and `keyflow dlq replay` can re-drive them in order.
// Resolved letters carry `expiresAt`: a TTL index drops them, and a sweep does it where TTL is ignored.
import { Binary, type Collection, type Db, type Filter } from 'mongodb';
import { KeyflowError } from '../errors';
import { HEADERS } from '../producers/headers';
import type { WireRecord } from '../producers/types';
import type { CollectionIndexes } from './mongo';
import { dlqTopicName } from '../topology/define';
import { indexLetters } from './letter-index';
import { pages } from './pages';

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
  /** Set when resolved (re-driven and applied, or discarded); the TTL index and the sweep read it. */
  resolvedAt?: Date;
  expiresAt?: Date;
  /** Set when an operator gave the letter up (`keyflow dlq discard`, the ops page). */
  discarded?: { by: string; reason: string; at: Date };
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
    // Retention of resolved letters: each carries its own expiry, so the index never changes.
    { key: { expiresAt: 1 }, name: 'expires_at_ttl', expireAfterSeconds: 0 },
    // A key's earlier open letters in one partition, per status (a re-driven letter's turn).
    {
      key: { stage: 1, key: 1, partition: 1, status: 1, position: 1 },
      name: 'stage_key_partition_status_position',
    },
    // The sweep, for servers that ignore TTL.
    { key: { status: 1, expiresAt: 1 }, name: 'status_expires_at' },
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
  /**
   * A re-driven letter that only waits again (KEY_PARKED) keeps the code and message of its first
   * failure: only its status changes.
   */
  keepReason?: boolean;
}

/** A letter id is `<stage>:<topic>:<partition>:<offset>`; topic names hold no `:`, stage names may. */
export function letterOrigin(id: string): { partition: number; position: number } | undefined {
  const parts = id.split(':');
  if (parts.length < 4) return undefined;
  const partition = Number(parts[parts.length - 2]);
  const position = Number(parts[parts.length - 1]);
  return Number.isInteger(partition) && Number.isFinite(position) ? { partition, position } : undefined;
}

/**
 * Upserts letters, in one unordered bulk write (letters have distinct ids). A redelivery, or a
 * re-driven event that fails again, updates the same letter: its original position is kept, so a later
 * replay still re-drives the key's letters in order. Alongside, the code-and-time index lists each letter
 * under its new `deadAt` (a letter that only waits again keeps its time and its entry); the two writes
 * are retried together until both land, before the event's offset moves.
 */
export async function recordLetters(db: Db, letters: readonly LetterInput[]): Promise<void> {
  if (letters.length === 0) return;
  const now = new Date();
  const dated = letters.filter((l) => !l.keepReason).map((l) => ({ id: l.id, stage: l.stage, code: l.code }));
  await Promise.all([
    dated.length > 0 ? indexLetters(db, dated, now) : undefined,
    deadLetters(db).bulkWrite(
      letters.map((l) => ({
        updateOne: { filter: { _id: l.id }, update: letterUpdate(l, now), upsert: true },
      })),
      { ordered: false },
    ),
  ]);
}

function letterUpdate(l: LetterInput, now: Date) {
  const reason = { code: l.code, message: l.message, attempts: l.attempts, deadAt: now };
  return {
    $set: { ...(l.keepReason ? {} : reason), status: l.status, updatedAt: now },
    $unset: { resolvedAt: '' as const, expiresAt: '' as const },
    $setOnInsert: {
      ...(l.keepReason ? reason : {}),
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

/** Kafka's default max.message.bytes; a record above the topic's limit would stall the partition. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_576;
/** Room for the record's framing (lengths, attributes, timestamps) over its key, value and headers. */
const RECORD_OVERHEAD = 512;

/**
 * The `<stage>.dlq` record: original key, bytes and headers, plus the reason and origin. One too large
 * for the topic carries no value and none of the original headers, only the reason and a pointer
 * (keyflow-dlq-stored) to the letter in MongoDB, which keeps the bytes.
 */
export function dlqRecord(l: LetterInput, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): WireRecord {
  const full = dlqRecordOf(l, l.value, l.headers);
  if (recordSize(full) <= maxMessageBytes) return full;
  return dlqRecordOf(l, null, { [HEADERS.DLQ_STORED]: `${DEAD_LETTERS}/${l.id}` });
}

function recordSize(r: WireRecord): number {
  let n = RECORD_OVERHEAD + Buffer.byteLength(r.key) + (r.value?.length ?? 0);
  for (const [k, v] of Object.entries(r.headers)) n += Buffer.byteLength(k) + Buffer.byteLength(v) + 8;
  return n;
}

function dlqRecordOf(l: LetterInput, value: Buffer | null, headers: Record<string, string>): WireRecord {
  return {
    topic: dlqTopicName(l.stage),
    key: l.key ?? '',
    value,
    eventId: l.eventId,
    headers: {
      ...headers,
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

/**
 * Keys with an open letter, read in pages of `pageSize` keys (ordered by key) so no reply grows
 * unbounded: one walk per open status, each an equality on stage and status and a range on key, which
 * an index in that order serves whole.
 */
export async function openKeys(db: Db, stage: string, pageSize = 1000): Promise<string[]> {
  const keys = new Set<string>();
  for (const status of OPEN_STATUSES) {
    const read = (after: string | undefined, size: number) => {
      const filter: Filter<DeadLetter> = {
        stage,
        status,
        key: after === undefined ? { $gte: '' } : { $gt: after },
      };
      return deadLetters(db)
        .find(filter, { projection: { key: 1 } })
        .sort({ key: 1 })
        .limit(size)
        .toArray();
    };
    for await (const page of pages(read, { pageSize, cursor: (l) => l.key! })) {
      for (const l of page) if (typeof l.key === 'string') keys.add(l.key);
    }
  }
  return [...keys].sort();
}

/** Of `keys`, those that still have an open letter: one query per open status for a batch's keys. */
export async function keysWithOpenLetters(db: Db, stage: string, keys: readonly string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const found = new Set<string>();
  for (const status of OPEN_STATUSES) {
    const page = await deadLetters(db).distinct('key', { stage, status, key: { $in: [...keys] } });
    for (const k of page) if (typeof k === 'string') found.add(k);
  }
  return [...found];
}

export interface RetentionOptions {
  /** How long a resolved letter is kept. */
  retentionMs: number;
}

export const DEFAULT_RETENTION_MS = 30 * 24 * 3600 * 1000;

export function resolvedFields(retentionMs: number, now = new Date()) {
  return {
    status: 'resolved' as const,
    updatedAt: now,
    resolvedAt: now,
    expiresAt: new Date(now.getTime() + retentionMs),
  };
}

export async function resolveLetter(db: Db, id: string, retentionMs = DEFAULT_RETENTION_MS): Promise<void> {
  await deadLetters(db).updateOne({ _id: id }, { $set: resolvedFields(retentionMs) });
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

/**
 * What a re-driven record of letter `id` must do: `go` when every earlier letter of its key (same
 * partition, lower offset) that is still open is re-driven ahead of it in the same batch (`ahead`),
 * `wait` when another one is, `done` when the letter is already resolved (a second copy of a re-drive,
 * say after `dlq replay` was killed between send and mark).
 */
export async function redriveTurn(
  db: Db,
  stage: string,
  key: string,
  id: string,
  ahead: ReadonlySet<string> = new Set(),
): Promise<'go' | 'wait' | 'done'> {
  const self = await deadLetters(db).findOne({ _id: id }, { projection: { status: 1 } });
  if (self?.status === 'resolved') return 'done';
  const origin = letterOrigin(id);
  if (!origin) return 'go';
  // One more than `ahead` holds: if all of those are ahead, every earlier open letter is.
  const earlier: { _id: string }[] = [];
  for (const status of OPEN_STATUSES) {
    earlier.push(
      ...(await deadLetters(db)
        .find(
          { stage, key, partition: origin.partition, status, position: { $lt: origin.position } },
          { projection: { _id: 1 } },
        )
        .limit(ahead.size + 1)
        .toArray()),
    );
  }
  return earlier.every((l) => ahead.has(l._id)) ? 'go' : 'wait';
}

export interface ListOptions {
  key?: string;
  status?: LetterStatus[];
  limit?: number;
  /** Also list `redriven` letters not touched for this long: their re-drive may never have arrived. */
  staleRedrivenMs?: number;
  /** Paging: only letters after this one in (partition, position) order. */
  after?: { partition: number; position: number };
}

/** Letters of a stage in their original order (partition, offset). */
export async function listLetters(db: Db, stage: string, opts: ListOptions = {}): Promise<DeadLetter[]> {
  const filter: Filter<DeadLetter> = { stage };
  if (opts.key !== undefined) filter.key = opts.key;
  const or: Filter<DeadLetter>[] = [];
  if (opts.status) or.push({ status: { $in: opts.status } });
  if (opts.staleRedrivenMs !== undefined) {
    or.push({ status: 'redriven', updatedAt: { $lt: new Date(Date.now() - opts.staleRedrivenMs) } });
  }
  if (or.length === 1) Object.assign(filter, or[0]);
  if (or.length > 1) filter.$or = or;
  if (opts.after) {
    const { partition, position } = opts.after;
    filter.$and = [{ $or: [{ partition: { $gt: partition } }, { partition, position: { $gt: position } }] }];
  }
  return deadLetters(db)
    .find(filter)
    .sort({ partition: 1, position: 1 })
    .limit(opts.limit ?? 1000)
    .toArray();
}

export interface DiscardOptions extends RetentionOptions {
  stage: string;
  /** One letter by id, or the earliest open letter of a key (the one holding the key back). */
  target: { letter: string } | { key: string };
  by: string;
  reason: string;
}

/**
 * Gives a letter up: it is resolved with who, why and when, so it holds its key back no longer and
 * the key's later letters can be re-driven. Throws DEAD_LETTER_NOT_FOUND when nothing open matches.
 */
export async function discardLetter(db: Db, opts: DiscardOptions): Promise<DeadLetter> {
  const { stage, target } = opts;
  const unresolved = { stage, status: { $in: ['parked', 'dead', 'redriven'] as LetterStatus[] } };
  const letter =
    'letter' in target
      ? await deadLetters(db).findOne({ _id: target.letter, ...unresolved })
      : (await listLetters(db, stage, { key: target.key, status: unresolved.status.$in, limit: 1 }))[0];
  const what = 'letter' in target ? `letter ${target.letter}` : `key ${target.key}`;
  if (!letter) {
    throw new KeyflowError('DEAD_LETTER_NOT_FOUND', `no unresolved dead letter of ${stage} for ${what}`);
  }
  const now = new Date();
  const discarded = { by: opts.by, reason: opts.reason, at: now };
  const res = await deadLetters(db).updateOne(
    { _id: letter._id, status: letter.status },
    { $set: { ...resolvedFields(opts.retentionMs, now), discarded } },
  );
  if (res.matchedCount === 0) {
    throw new KeyflowError('DEAD_LETTER_NOT_FOUND', `letter ${letter._id} changed meanwhile; list it again`);
  }
  return { ...letter, ...resolvedFields(opts.retentionMs, now), discarded };
}

/** Deletes resolved letters past their expiry: the TTL index does this on servers that honour it. */
export async function sweepExpiredLetters(db: Db, now = new Date()): Promise<number> {
  const res = await deadLetters(db).deleteMany({ status: 'resolved', expiresAt: { $lte: now } });
  return res.deletedCount;
}

/**
 * Runs the sweep every `intervalMs` until the returned stop is called, then `also` (the code-and-time
 * index's sweep); a failed sweep is only logged.
 */
export function startLetterSweep(
  db: Db,
  intervalMs: number,
  onError: (err: unknown) => void,
  also?: () => Promise<unknown>,
): () => void {
  const timer = setInterval(() => {
    sweepExpiredLetters(db)
      .then(() => also?.())
      .catch(onError);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** The dead-letter store as the stage runner sees it (consumers/parked-keys.ts), backed by MongoDB. */
export function mongoLetterStore(db: Db, retentionMs = DEFAULT_RETENTION_MS) {
  return {
    record: (inputs: readonly LetterInput[]) => recordLetters(db, inputs),
    openKeys: (stage: string) => openKeys(db, stage),
    keysWithOpenLetters: (stage: string, keys: readonly string[]) => keysWithOpenLetters(db, stage, keys),
    redriveTurn: (stage: string, key: string, id: string, ahead: ReadonlySet<string>) =>
      redriveTurn(db, stage, key, id, ahead),
    hasOpenLetters: (stage: string, key: string) => hasOpenLetters(db, stage, key),
    hasParkedLetters: (stage: string, key: string) => hasParkedLetters(db, stage, key),
    resolveLetter: (id: string) => resolveLetter(db, id, retentionMs),
  };
}
