// Provenance records each handled delivery from instrumentation events, in bulk and off the hot path:
// a redelivery of one position appends a record beside the earlier attempt's, an upstream duplicate at
// another offset gets its own, a covering commit sets committedAt, queries by entity and by event work, and a failing flush
// is retried without throwing into the emitter.
import { Writable } from 'node:stream';
import { EVENTS, Instrumentation, type HandledEvent } from '../../src/instrumentation';
import { createLogger } from '../../src/logger';
import { ensureIndexes } from '../../src/state/mongo';
import {
  byEntity,
  byEvent,
  PROVENANCE_COLLECTION,
  PROVENANCE_INDEXES,
  ProvenanceRecorder,
  sweepProvenance,
  type ProvenanceRecord,
} from '../../src/state/provenance';
import { outOfOrderReport } from '../../src/state/out-of-order';
import { cleanupAll, freshDb, onCleanup } from '../helpers';

jest.setTimeout(60_000);
afterAll(cleanupAll);

function handled(over: Partial<HandledEvent>): HandledEvent {
  return {
    stage: 'book',
    topic: 'appointments',
    partition: 1,
    offset: '0',
    key: 'appt-1',
    eventId: 'e1',
    traceId: 'trace-1',
    tenantId: 't1',
    occurredAt: 1000,
    consumedAt: 2000,
    readStartedAt: 2001,
    decideStartedAt: 2002,
    writeStartedAt: 2003,
    emitStartedAt: 2004,
    finishedAt: 2005,
    attempt: 1,
    outcome: 'applied',
    outOfOrder: false,
    errorCode: undefined,
    errorMessage: undefined,
    emitted: [],
    ...over,
  };
}

function quietLog() {
  const lines: string[] = [];
  const log = createLogger(
    'info',
    new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  return { log, lines };
}

test('records, redeliveries, duplicates and commits end up as one record per delivery attempt', async () => {
  const { db } = await freshDb();
  await ensureIndexes(db, [PROVENANCE_INDEXES]);
  const inst = new Instrumentation();
  const { log } = quietLog();
  const rec = new ProvenanceRecorder(db, inst, log, { flushIntervalMs: 60_000, maxBatch: 1000 });
  onCleanup(() => rec.close());

  inst.emit(
    EVENTS.EVENT_HANDLED,
    handled({ offset: '5', eventId: 'e1', consumedAt: 2000, outcome: 'applied', emitted: ['x'] }),
  );
  inst.emit(EVENTS.EVENT_HANDLED, handled({ offset: '6', eventId: 'e2', consumedAt: 2100 }));
  // Committed before the first flush: folded into the buffered records.
  inst.emit(EVENTS.BATCH_COMMITTED, {
    stage: 'book',
    topic: 'appointments',
    partition: 1,
    offset: '7',
    committedAt: 3000,
    positions: ['appointments:1:5', 'appointments:1:6'],
  });
  inst.emit(EVENTS.EVENT_HANDLED, handled({ offset: '7', eventId: 'e3', consumedAt: 2200 }));
  await rec.flush();
  // Redelivery of offset 7 after a crash: a second record; upstream duplicate of e1 at offset 9: its own record.
  inst.emit(
    EVENTS.EVENT_HANDLED,
    handled({ offset: '7', eventId: 'e3', consumedAt: 2300, attempt: 1, outcome: 'duplicate' }),
  );
  inst.emit(
    EVENTS.EVENT_HANDLED,
    handled({ offset: '9', eventId: 'e1', consumedAt: 2400, outcome: 'duplicate' }),
  );
  inst.emit(
    EVENTS.EVENT_HANDLED,
    handled({ stage: 'notify', key: 'appt-1', offset: '5', eventId: 'e1', consumedAt: 2500 }),
  );
  inst.emit(EVENTS.EVENT_HANDLED, handled({ key: 'appt-2', offset: '10', eventId: 'e4', consumedAt: 2600 }));
  await rec.flush();
  // Committed after the records were written: applied as an update.
  inst.emit(EVENTS.BATCH_COMMITTED, {
    stage: 'book',
    topic: 'appointments',
    partition: 1,
    offset: '10',
    committedAt: 4000,
    positions: ['appointments:1:7', 'appointments:1:9'],
  });
  await rec.close();
  await rec.close();

  const all = await db
    .collection<ProvenanceRecord>(PROVENANCE_COLLECTION)
    .find({})
    .sort({ position: 1, consumedAt: 1 })
    .toArray();
  expect(all.map((d) => d.position)).toEqual([
    'book:appointments:1:10',
    'book:appointments:1:5',
    'book:appointments:1:6',
    'book:appointments:1:7',
    'book:appointments:1:7',
    'book:appointments:1:9',
    'notify:appointments:1:5',
  ]);
  // The first attempt at offset 7 stays as it was: applied, never committed (the crash came first).
  expect(all[3]).toMatchObject({ outcome: 'applied', consumedAt: 2200 });
  expect(all[3]?.committedAt).toBeUndefined();
  const byId = Object.fromEntries(all.map((d) => [d.position, d]));
  expect(byId['book:appointments:1:5']).toMatchObject({
    eventId: 'e1',
    committedAt: 3000,
    emitted: ['x'],
    traceId: 'trace-1',
  });
  expect(byId['book:appointments:1:6']).toMatchObject({ committedAt: 3000 });
  expect(byId['book:appointments:1:7']).toMatchObject({
    outcome: 'duplicate',
    consumedAt: 2300,
    committedAt: 4000,
  });
  expect(byId['book:appointments:1:9']).toMatchObject({ committedAt: 4000 });
  expect(byId['notify:appointments:1:5']?.committedAt).toBeUndefined();

  const entity = await byEntity(db, 'appt-1', { limit: 10 });
  expect(entity.map((r) => r.position)).toEqual([
    'notify:appointments:1:5',
    'book:appointments:1:9',
    'book:appointments:1:7',
    'book:appointments:1:7',
    'book:appointments:1:6',
    'book:appointments:1:5',
  ]);
  expect((await byEntity(db, 'appt-1', { stage: 'book', limit: 2 })).map((r) => r.offset)).toEqual([
    '9',
    '7',
  ]);
  expect((await byEvent(db, 'e1')).map((r) => r.position)).toEqual([
    'book:appointments:1:5',
    'book:appointments:1:9',
    'notify:appointments:1:5',
  ]);
});

test('a failing flush is logged and retried until it succeeds; the emitter never sees an error', async () => {
  const { db } = await freshDb();
  const coll = db.collection<{ _id: string; eventId: string; position?: string }>(PROVENANCE_COLLECTION);
  // A unique index the record collides with makes the server refuse the bulk write until it is dropped.
  await coll.createIndex({ eventId: 1 }, { unique: true, name: 'test_blocker' });
  await coll.insertOne({ _id: 'blocker', eventId: 'e-blocked' });
  const inst = new Instrumentation();
  const { log, lines } = quietLog();
  const rec = new ProvenanceRecorder(db, inst, log, { flushIntervalMs: 60_000 });
  onCleanup(() => rec.close());

  expect(() => inst.emit(EVENTS.EVENT_HANDLED, handled({ offset: '1', eventId: 'e-blocked' }))).not.toThrow();
  await rec.flush();
  await rec.flush();
  expect(rec.buffered).toBe(1);
  expect(lines.join('')).toContain('provenance: bulk write failed');
  // The commit arriving while its record waits is kept in order behind it.
  inst.emit(EVENTS.BATCH_COMMITTED, {
    stage: 'book',
    topic: 'appointments',
    partition: 1,
    offset: '2',
    committedAt: 5000,
    positions: ['appointments:1:1'],
  });

  await coll.deleteOne({ _id: 'blocker' });
  await coll.dropIndex('test_blocker');
  await rec.close();
  expect(rec.buffered).toBe(0);
  expect(await coll.findOne({ position: 'book:appointments:1:1' })).toMatchObject({
    eventId: 'e-blocked',
    committedAt: 5000,
  });
});

test('a redelivered out-of-order event keeps both attempts, and still counts once as corrected', async () => {
  const { db } = await freshDb();
  await ensureIndexes(db, [PROVENANCE_INDEXES]);
  const inst = new Instrumentation();
  const { log } = quietLog();
  const rec = new ProvenanceRecorder(db, inst, log, { flushIntervalMs: 60_000 });
  onCleanup(() => rec.close());

  // The late event is applied (its reducer folds it in place), then redelivered after a crash before the
  // commit: the applied-event guard absorbs the second delivery as a duplicate.
  const late = { offset: '7', eventId: 'late-1', outOfOrder: true } as const;
  inst.emit(EVENTS.EVENT_HANDLED, handled({ ...late, consumedAt: 3000, outcome: 'applied' }));
  await rec.flush();
  inst.emit(EVENTS.EVENT_HANDLED, handled({ ...late, consumedAt: 3500, outcome: 'duplicate' }));
  inst.emit(
    EVENTS.EVENT_HANDLED,
    handled({ offset: '8', eventId: 'late-2', outOfOrder: true, consumedAt: 3600, outcome: 'skipped' }),
  );
  await rec.flush();
  inst.emit(EVENTS.BATCH_COMMITTED, {
    stage: 'book',
    topic: 'appointments',
    partition: 1,
    offset: '9',
    committedAt: 4000,
    positions: ['appointments:1:7', 'appointments:1:8'],
  });
  await rec.close();

  const attempts = await byEvent(db, 'late-1');
  expect(attempts.map((r) => [r.outcome, r.consumedAt])).toEqual([
    ['applied', 3000],
    ['duplicate', 3500],
  ]);
  // The commit belongs to the delivery that led to it, the redelivery.
  expect(attempts.map((r) => r.committedAt)).toEqual([undefined, 4000]);
  const report = await outOfOrderReport(db, 'book', 10);
  expect(report.stages).toEqual([
    { stage: 'book', detected: 2, corrected: 1, outcomes: { applied: 1, duplicate: 1, skipped: 1 } },
  ]);
});

test('with retention set, records carry an expiry, a TTL index backs it, and the sweep removes expired ones', async () => {
  const { db } = await freshDb();
  await ensureIndexes(db, [PROVENANCE_INDEXES]);
  const inst = new Instrumentation();
  const { log } = quietLog();
  const rec = new ProvenanceRecorder(db, inst, log, { flushIntervalMs: 60_000, retentionDays: 2 });
  onCleanup(() => rec.close());
  const now = Date.now();
  inst.emit(EVENTS.EVENT_HANDLED, handled({ offset: '1', eventId: 'old', consumedAt: now - 3 * 86_400_000 }));
  inst.emit(EVENTS.EVENT_HANDLED, handled({ offset: '2', eventId: 'new', consumedAt: now }));
  await rec.flush();
  const coll = db.collection<ProvenanceRecord>(PROVENANCE_COLLECTION);
  expect((await coll.findOne({ eventId: 'new' }))?.expireAt).toEqual(new Date(now + 2 * 86_400_000));
  const ttl = (await coll.indexes()).find((i) => i.name === 'expire');
  expect(ttl).toMatchObject({ key: { expireAt: 1 }, expireAfterSeconds: 0 });

  expect(await rec.sweep()).toBe(1);
  expect((await coll.find({}).toArray()).map((r) => r.eventId)).toEqual(['new']);
  expect(await sweepProvenance(db)).toBe(0);
});

test('out-of-order records recorded before their own collection are copied once, and the report reads only that collection', async () => {
  const { db } = await freshDb();
  await ensureIndexes(db, [PROVENANCE_INDEXES]);
  const early = (offset: string, outOfOrder: boolean) => ({
    ...handled({ offset, eventId: `e-${offset}`, outOfOrder, outcome: outOfOrder ? 'skipped' : 'applied' }),
    _id: `book:appointments:1:${offset}:2000:x`,
    position: `book:appointments:1:${offset}`,
  });
  // As an older version left them: provenance only.
  await db
    .collection<ProvenanceRecord>(PROVENANCE_COLLECTION)
    .insertMany([early('1', true), early('2', false), early('3', true)]);
  const { log, lines } = quietLog();
  const first = new ProvenanceRecorder(db, new Instrumentation(), log, { flushIntervalMs: 60_000 });
  await first.copied();
  await first.close();
  const report = await outOfOrderReport(db, undefined, 10);
  expect(report.records.map((r) => r.eventId).sort()).toEqual(['e-1', 'e-3']);
  expect(report.stages).toEqual([{ stage: 'book', detected: 2, corrected: 0, outcomes: { skipped: 2 } }]);
  expect(lines.join('')).toContain('"copied":2');

  // Copied once per store: a record that reaches provenance alone later is not picked up by a restart.
  await db.collection<ProvenanceRecord>(PROVENANCE_COLLECTION).insertOne(early('4', true));
  const second = new ProvenanceRecorder(db, new Instrumentation(), log, { flushIntervalMs: 60_000 });
  await second.copied();
  await second.close();
  expect((await outOfOrderReport(db, 'book', 10)).records).toHaveLength(2);

  // The report counts what sits in its own collection, whatever provenance holds.
  await db.collection(PROVENANCE_COLLECTION).deleteMany({});
  expect((await outOfOrderReport(db, 'book', 10)).records).toHaveLength(2);
});
