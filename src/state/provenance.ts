// Provenance: for every delivery a stage handled, what it was, when each step ran, what it emitted and
// when its offset was committed. Recorded from instrumentation events and written in bulk off the hot path.
import { randomBytes } from 'node:crypto';
import type { AnyBulkWriteOperation, Db } from 'mongodb';
import { EVENTS, type EventPayloads, type HandledEvent, type Instrumentation } from '../instrumentation';
import { classify } from '../errors';
import type { Logger } from '../logger';
import type { CollectionIndexes } from './mongo';
import {
  copyOutOfOrderInBackground,
  sweepOutOfOrder,
  writeOutOfOrder,
  type OutOfOrderRecord,
} from './out-of-order';

export const PROVENANCE_COLLECTION = 'keyflow_provenance';

export const PROVENANCE_INDEXES: CollectionIndexes = {
  collection: PROVENANCE_COLLECTION,
  indexes: [
    { key: { key: 1, consumedAt: -1 }, name: 'by_entity' },
    { key: { eventId: 1 }, name: 'by_event' },
    { key: { outOfOrder: 1, consumedAt: -1 }, name: 'out_of_order' },
    // Retention: a record goes once its expireAt passes (the sweep below does it where TTL is ignored).
    { key: { expireAt: 1 }, name: 'expire', expireAfterSeconds: 0 },
  ],
};

/**
 * One handled delivery, one attempt. `position` is `<stage>:<topic>:<partition>:<offset>`; `_id` adds the
 * consumption time and a random tag, so a redelivery of the same position appends a record beside the
 * earlier attempt's, and an upstream duplicate (same eventId, other offset) has its own position.
 */
export interface ProvenanceRecord extends HandledEvent {
  _id: string;
  position: string;
  /** Set once a commit covering this attempt is reported. */
  committedAt?: number;
  /** When retention removes the record; absent while retention is off. */
  expireAt?: Date;
}

export interface RecorderOptions {
  /** Flush when this many writes are waiting (default 500). */
  maxBatch?: number;
  /** Flush at least this often (default 1000 ms). */
  flushIntervalMs?: number;
  /** While MongoDB is down, keep at most this many writes; the oldest are dropped beyond it (default 100000). */
  maxBuffered?: number;
  /** Records expire this many days after consumption; 0 (the default) keeps them. */
  retentionDays?: number;
  /** How often expired records are deleted, for servers without a TTL monitor (default 1 h). */
  sweepIntervalMs?: number;
}

const DAY_MS = 86_400_000;

type Op = { kind: 'record'; doc: ProvenanceRecord } | { kind: 'commit'; id: string; committedAt: number };

export function provenancePosition(stage: string, topic: string, partition: number, offset: string): string {
  return `${stage}:${topic}:${partition}:${offset}`;
}

/**
 * Deletes records whose retention has passed, and their out-of-order copies; the TTL indexes do the
 * same where the server runs them.
 */
export async function sweepProvenance(db: Db, now = new Date()): Promise<number> {
  const res = await db
    .collection<ProvenanceRecord>(PROVENANCE_COLLECTION)
    .deleteMany({ expireAt: { $lt: now } });
  await sweepOutOfOrder(db, now);
  return res.deletedCount;
}

/**
 * Subscribes on construction. Listeners only append to a buffer; a timer (and a full buffer) flushes it
 * with one ordered bulkWrite, one flush at a time so a commit's update never overtakes its record.
 * A failed flush is logged and its writes retried with the next flush: provenance never stops a stage.
 */
export class ProvenanceRecorder {
  private pending: Op[] = [];
  /** Records not yet handed to a flush, so a commit that arrives first is folded into them. */
  private readonly unwritten = new Map<string, ProvenanceRecord>();
  /** Per position, the _id of its latest attempt here, which a covering commit marks (bounded). */
  private readonly latest = new Map<string, string>();
  private readonly unsubscribe: (() => void)[];
  private readonly timer: NodeJS.Timeout;
  private readonly sweeper: NodeJS.Timeout | undefined;
  private readonly retentionMs: number;
  private flushing: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  /** The one-time copy of earlier out-of-order records (state/out-of-order.ts). */
  private readonly copying: Promise<void>;
  private dropped = 0;
  private readonly maxBatch: number;
  private readonly maxBuffered: number;

  constructor(
    private readonly db: Db,
    instrumentation: Instrumentation,
    private readonly log: Logger,
    opts: RecorderOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.maxBuffered = opts.maxBuffered ?? 100_000;
    this.unsubscribe = [
      instrumentation.on(EVENTS.EVENT_HANDLED, (e) => this.onHandled(e)),
      instrumentation.on(EVENTS.BATCH_COMMITTED, (c) => this.onCommitted(c)),
    ];
    this.timer = setInterval(() => void this.flush(), opts.flushIntervalMs ?? 1000);
    // The recorder must not keep a finishing process alive; close() does the last flush.
    this.timer.unref();
    this.copying = copyOutOfOrderInBackground(db, PROVENANCE_COLLECTION, {
      log,
      stopped: () => this.closing !== undefined,
    });
    this.retentionMs = (opts.retentionDays ?? 0) * DAY_MS;
    if (this.retentionMs > 0) {
      this.sweeper = setInterval(() => void this.sweep(), opts.sweepIntervalMs ?? 3_600_000);
      this.sweeper.unref();
    }
  }

  /** Deletes expired records now; failures are logged, the next sweep tries again. */
  async sweep(): Promise<number> {
    try {
      return await sweepProvenance(this.db);
    } catch (err) {
      const e = classify(err);
      this.log.warn({ err: e, code: e.code }, 'provenance: retention sweep failed; retrying later');
      return 0;
    }
  }

  /** Resolves once the one-time copy of earlier out-of-order records has ended (done, failed or stopped). */
  copied(): Promise<void> {
    return this.copying;
  }

  /** Writes waiting to be flushed. */
  get buffered(): number {
    return this.pending.length;
  }

  /** Writes dropped because MongoDB stayed unavailable while the buffer was full. */
  get droppedCount(): number {
    return this.dropped;
  }

  /** Writes everything buffered now; resolves when done. Never rejects: failures are logged and kept. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushAll());
    return this.flushing;
  }

  /** Stops listening and flushes what is buffered; safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const off of this.unsubscribe) off();
      clearInterval(this.timer);
      clearInterval(this.sweeper);
      await this.copying;
      await this.flush();
      if (this.pending.length > 0) {
        this.log.warn(
          { lost: this.pending.length },
          'provenance: closing with unwritten records (MongoDB unavailable)',
        );
      }
    })();
    return this.closing;
  }

  private onHandled(e: HandledEvent): void {
    if (this.closing) return;
    const position = provenancePosition(e.stage, e.topic, e.partition, e.offset);
    const doc: ProvenanceRecord = {
      ...e,
      _id: `${position}:${e.consumedAt}:${randomBytes(4).toString('hex')}`,
      position,
    };
    if (this.retentionMs > 0) doc.expireAt = new Date(e.consumedAt + this.retentionMs);
    this.push({ kind: 'record', doc });
    this.unwritten.set(doc._id, doc);
    this.latest.delete(position);
    this.latest.set(position, doc._id);
    // Positions never committed here (lost in a rebalance) must not pile up.
    if (this.latest.size > this.maxBuffered) this.latest.delete(this.latest.keys().next().value!);
  }

  private onCommitted(c: EventPayloads['stage.batch.committed']): void {
    if (this.closing) return;
    for (const p of c.positions) {
      const position = `${c.stage}:${p}`;
      const id = this.latest.get(position);
      if (id === undefined) continue;
      this.latest.delete(position);
      const doc = this.unwritten.get(id);
      if (doc) doc.committedAt = c.committedAt;
      else this.push({ kind: 'commit', id, committedAt: c.committedAt });
    }
  }

  private push(op: Op): void {
    this.pending.push(op);
    if (this.pending.length > this.maxBuffered) this.drop(this.pending.length - this.maxBuffered);
    if (this.pending.length === this.maxBatch) void this.flush();
  }

  private drop(n: number): void {
    for (const op of this.pending.splice(0, n)) {
      if (op.kind === 'record' && this.unwritten.get(op.doc._id) === op.doc)
        this.unwritten.delete(op.doc._id);
    }
    if (this.dropped === 0)
      this.log.warn({ maxBuffered: this.maxBuffered }, 'provenance: buffer full, dropping oldest');
    this.dropped += n;
  }

  private async flushAll(): Promise<void> {
    while (this.pending.length > 0) {
      if (!(await this.flushBatch())) return;
    }
  }

  /** Writes one batch; on failure puts it back in front and returns false so the next flush retries. */
  private async flushBatch(): Promise<boolean> {
    const batch = this.pending.splice(0, this.maxBatch);
    // From here on a commit for these records becomes its own update, ordered after the record's write.
    for (const op of batch) {
      if (op.kind === 'record' && this.unwritten.get(op.doc._id) === op.doc)
        this.unwritten.delete(op.doc._id);
    }
    const writes: AnyBulkWriteOperation<ProvenanceRecord>[] = batch.map((op) =>
      op.kind === 'record'
        ? { replaceOne: { filter: { _id: op.doc._id }, replacement: op.doc, upsert: true } }
        : { updateOne: { filter: { _id: op.id }, update: { $set: { committedAt: op.committedAt } } } },
    );
    try {
      await this.db.collection<ProvenanceRecord>(PROVENANCE_COLLECTION).bulkWrite(writes, { ordered: true });
      // Out-of-order records also go where the ops report reads them; a failure retries the batch.
      const late = batch.flatMap((op) => (op.kind === 'record' && op.doc.outOfOrder ? [op.doc] : []));
      await writeOutOfOrder(this.db, late as unknown as OutOfOrderRecord[]);
      return true;
    } catch (err) {
      const e = classify(err);
      this.log.error(
        { err: e, code: e.code, writes: batch.length, buffered: this.pending.length },
        'provenance: bulk write failed; retrying with the next flush',
      );
      // Replaying the whole batch is safe: replaces and $set are idempotent.
      this.pending.unshift(...batch);
      for (const op of batch) {
        if (op.kind === 'record' && !this.unwritten.has(op.doc._id)) this.unwritten.set(op.doc._id, op.doc);
      }
      return false;
    }
  }
}

export interface ByEntityOptions {
  stage?: string;
  /** Default 100, newest first. */
  limit?: number;
}

/** What happened to one entity (message key), newest consumption first. */
export async function byEntity(db: Db, key: string, opts: ByEntityOptions = {}): Promise<ProvenanceRecord[]> {
  const filter: Record<string, unknown> = { key };
  if (opts.stage !== undefined) filter.stage = opts.stage;
  return db
    .collection<ProvenanceRecord>(PROVENANCE_COLLECTION)
    .find(filter)
    .sort({ consumedAt: -1 })
    .limit(opts.limit ?? 100)
    .toArray();
}

/** Every delivery of one event id, across stages and redeliveries, in consumption order. */
export async function byEvent(db: Db, eventId: string): Promise<ProvenanceRecord[]> {
  return db
    .collection<ProvenanceRecord>(PROVENANCE_COLLECTION)
    .find({ eventId })
    .sort({ consumedAt: 1 })
    .limit(1000)
    .toArray();
}
