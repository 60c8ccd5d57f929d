// Measures the two roads to an exactly-once RSLeadGlobalConversions on the local Mongo-protocol server:
// atomic operators behind the applied-event guard, versus archiving each event and deriving the row.
// Run: npx tsx bench/conversions-approaches.ts   (MONGO_URL, else .keyflow/services.env; EVENTS=20000 ROWS=2000)
import { randomUUID } from 'node:crypto';
import { MongoClient, type Db } from 'mongodb';
import { loadConfig } from '../src/config';
import { reduceConversions, rowIdOf, totalsOf, type ConversionRow } from '../src/conversions/reducer';
import type { ConversionEvent } from '../src/conversions/schemas';
import { conversionsStage } from '../src/conversions/stage';
import { archiveOf, CONVERSION_INDEXES, ROWS, rowEvents } from '../src/conversions/store';
import { archiveEvent } from '../src/state/archive';
import { APPLIED_WINDOW, applyOnce } from '../src/state/guard';
import { ensureIndexes } from '../src/state/mongo';
import type { ActionContext, StageEvent } from '../src/topology/types';

const DELIVERIES = Number(process.env.EVENTS ?? 20_000);
const ROW_COUNT = Number(process.env.ROWS ?? 2_000);
const DUPLICATE_SHARE = 0.1;
/** Concurrent key lanes, as the stage runner runs a partition's keys; one row's events stay in order. */
const LANES = 16;
const TYPES = ['contacted', 'appointment_set', 'sold'];

/** A seeded generator, so every approach sees the very same deliveries in the very same order. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Distinct events over ROW_COUNT rows, shuffled, then 10% re-sent later (some right after, some far). */
function workload(seed: number): { deliveries: ConversionEvent[]; distinct: ConversionEvent[] } {
  const rand = rng(seed);
  const distinctCount = Math.round(DELIVERIES * (1 - DUPLICATE_SHARE));
  const distinct: ConversionEvent[] = [];
  for (let i = 0; i < distinctCount; i++) {
    const row = i % ROW_COUNT;
    distinct.push({
      eventId: `ev-${i}`,
      tenantId: `t${row % 10}`,
      leadId: `lead-${Math.floor(row / TYPES.length)}`,
      conversionType: TYPES[row % TYPES.length]!,
      occurredAt: 1_700_000_000_000 + Math.floor(rand() * 86_400_000),
      amount: rand() < 0.2 ? null : Math.round(rand() * 100_000) / 100,
    });
  }
  const deliveries = [...distinct];
  for (let i = deliveries.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!];
  }
  for (let n = distinctCount; n < DELIVERIES; n++) {
    const at = Math.floor(rand() * deliveries.length);
    const copy = deliveries[at]!;
    const later = at + 1 + Math.floor(rand() * (deliveries.length - at));
    deliveries.splice(later, 0, { ...copy });
  }
  return { deliveries, distinct };
}

interface Approach {
  name: string;
  trips: string;
  setup(db: Db): Promise<void>;
  apply(db: Db, e: ConversionEvent, offset: number): Promise<void>;
  rows(db: Db): Promise<ConversionRow[]>;
}

const ctxOf = (db: Db): ActionContext => ({ stage: 'bench', db, now: () => Date.now() });
const readRows = async (db: Db) =>
  (await db.collection<ConversionRow & { _id: string }>(ROWS).find().toArray()).map(
    ({ tenantId, leadId, conversionType, count, amount, firstAt, lastAt }) => ({
      tenantId,
      leadId,
      conversionType,
      count,
      amount,
      firstAt,
      lastAt,
    }),
  );

const atomic: Approach = {
  name: '(1) atomic $inc/$min/$max + applyOnce (64-id window)',
  trips: '1 (duplicate: 2)',
  setup: async () => undefined,
  async apply(db, e) {
    await applyOnce(db.collection(ROWS), rowIdOf(e), e.eventId, {
      $inc: { count: 1, amount: e.amount ?? 0 },
      $min: { firstAt: e.occurredAt },
      $max: { lastAt: e.occurredAt },
      $setOnInsert: { tenantId: e.tenantId, leadId: e.leadId, conversionType: e.conversionType },
    });
  },
  rows: readRows,
};

/** Not the shipped stage: the plain "archive, recompute from a fresh read, set if count ≥ stored" write. */
const archiveWrite: Approach = {
  name: '(2a) archive, recompute row from a fresh read, set if count ≥ stored (write path only)',
  trips: '3 (duplicate: 1)',
  setup: (db) => ensureIndexes(db, CONVERSION_INDEXES),
  async apply(db, e, offset) {
    const archived = await archiveEvent(archiveOf(db), {
      _id: e.eventId,
      entityId: e.leadId,
      tenantId: e.tenantId,
      occurredAt: e.occurredAt,
      arrivedAt: Date.now(),
      topic: 'bench',
      partition: 0,
      offset,
      value: {
        conversionType: e.conversionType,
        amount: e.amount,
        change: {
          ...e,
          outOfOrder: false,
          before: null,
          after: { count: 1, amount: 0, firstAt: 0, lastAt: 0 },
        },
      },
    });
    if (archived === 'duplicate') return;
    const totals = totalsOf(await rowEvents(db, e))!;
    const { tenantId, leadId, conversionType } = e;
    await db
      .collection(ROWS)
      .updateOne(
        { _id: rowIdOf(e), count: { $lte: totals.count } } as never,
        { $set: { tenantId, leadId, conversionType, ...totals } },
        { upsert: true },
      )
      .catch((err: { code?: unknown }) => {
        if (err.code !== 11000) throw err; // a newer recompute is stored
      });
  },
  rows: readRows,
};

const stage = conversionsStage({ name: 'bench', input: 'bench.in', output: 'bench.out' });
const archiveStage: Approach = {
  name: '(2b) archive road as shipped: the `lead-conversions` handler (read → decide → write, row compare-and-set)',
  trips: '3 reads (row, then 2 parallel) + 2 writes (duplicate: 3 reads)',
  setup: (db) => ensureIndexes(db, CONVERSION_INDEXES),
  async apply(db, value, offset) {
    const event: StageEvent<ConversionEvent> = {
      key: value.leadId,
      value,
      eventId: value.eventId,
      occurredAt: value.occurredAt,
      tenantId: value.tenantId,
      traceId: '',
      topic: 'bench.in',
      partition: 0,
      offset: String(offset),
      attempt: 1,
      headers: {},
      consumedAt: Date.now(),
    };
    const ctx = ctxOf(db);
    const state = await stage.handler.read(event, ctx);
    const decision = stage.handler.decide(event, state);
    if (decision.plan !== null) await stage.handler.write(decision.plan, event, ctx);
  },
  rows: readRows,
};

/** Runs deliveries in LANES key lanes: a row's events in arrival order, different rows concurrently. */
async function run(db: Db, a: Approach, deliveries: ConversionEvent[]): Promise<number> {
  const lanes: { e: ConversionEvent; i: number }[][] = Array.from({ length: LANES }, () => []);
  deliveries.forEach((e, i) => {
    let h = 0;
    for (const ch of e.leadId) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    lanes[h % LANES]!.push({ e, i });
  });
  const started = process.hrtime.bigint();
  await Promise.all(
    lanes.map(async (lane) => {
      for (const { e, i } of lane) await a.apply(db, e, i);
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e6;
}

interface Verdict {
  exactCounts: number;
  exactAmounts: number;
  total: number;
}

function compare(got: ConversionRow[], want: ConversionRow[]): Verdict {
  const byId = new Map(got.map((r) => [rowIdOf(r), r]));
  let exactCounts = 0;
  let exactAmounts = 0;
  for (const w of want) {
    const g = byId.get(rowIdOf(w));
    if (!g) continue;
    if (g.count === w.count && g.firstAt === w.firstAt && g.lastAt === w.lastAt) exactCounts++;
    if (g.amount === w.amount) exactAmounts++;
  }
  return { exactCounts: got.length === want.length ? exactCounts : -1, exactAmounts, total: want.length };
}

/** One row gets APPLIED_WINDOW + 36 distinct events, then its first event is sent again. */
async function farDuplicate(db: Db, a: Approach): Promise<string> {
  const events: ConversionEvent[] = Array.from({ length: APPLIED_WINDOW + 36 }, (_, i) => ({
    eventId: `far-${i}`,
    tenantId: 'tf',
    leadId: 'far-lead',
    conversionType: 'sold',
    occurredAt: 1_700_000_000_000 + i,
    amount: 1,
  }));
  for (const [i, e] of [...events, events[0]!].entries()) await a.apply(db, e, i);
  const row = (await a.rows(db)).find((r) => r.leadId === 'far-lead')!;
  return row.count === events.length ? `count ${row.count}: ignored` : `count ${row.count}: COUNTED TWICE`;
}

async function main(): Promise<void> {
  const mongoUrl = process.env.MONGO_URL ?? loadConfig().mongoUrl;
  const client = new MongoClient(mongoUrl);
  await client.connect();
  const { deliveries, distinct } = workload(42);
  const expected = reduceConversions(distinct);
  const lines: string[] = [];
  try {
    for (const a of [atomic, archiveWrite, archiveStage]) {
      // A database of the bench's own per approach, dropped before and after.
      const db = client.db(`kfbench_conversions_${randomUUID().slice(0, 8)}`);
      try {
        await a.setup(db);
        process.stderr.write(`running ${a.name} …\n`);
        const ms = await run(db, a, deliveries);
        const v = compare(await a.rows(db), expected);
        const far = await farDuplicate(db, a);
        const rate = Math.round((deliveries.length * 1000) / ms).toLocaleString('en-US');
        const counts = v.exactCounts < 0 ? 'row set differs' : `${v.exactCounts}/${v.total}`;
        lines.push(
          `| ${a.name} | ${a.trips} | ${(ms / 1000).toFixed(1)} s | ${rate} | ${counts} | ${v.exactAmounts}/${v.total} | ${far} |`,
        );
      } finally {
        await db.dropDatabase();
      }
    }
  } finally {
    await client.close();
  }
  const dupes = deliveries.length - distinct.length;
  process.stdout.write(
    [
      `${deliveries.length.toLocaleString('en-US')} deliveries (${distinct.length.toLocaleString('en-US')} distinct + ${dupes.toLocaleString('en-US')} re-sent at a random later position) over ${expected.length.toLocaleString('en-US')} rows, ${LANES} key lanes, ${mongoUrl.replace(/\/\/[^@/]*@/, '//***@')}`,
      '',
      '| approach | Mongo round trips per event | time | events/s | rows exact (count, firstAt, lastAt) | amount bit-exact | duplicate after 100 events of its row |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...lines,
      '',
    ].join('\n'),
  );
}

main().catch((err) => {
  process.stderr.write(`conversions bench failed: ${String(err)}\n`);
  process.exit(1);
});
