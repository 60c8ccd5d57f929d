// Rows of RSLeadGlobalConversions written before amountMicros and version existed: one whose float sum
// is not a whole number of millionths on its face (0.1 + 0.2) is read, counted on and upgraded; one that
// cannot be read at all fails the events of its own key only, never the rest of the batch.
import type { Db } from 'mongodb';
import { runBatch } from '../../src/consumers/batch';
import { rowIdOf } from '../../src/conversions/reducer';
import type { ConversionEvent } from '../../src/conversions/schemas';
import { conversionsStage } from '../../src/conversions/stage';
import { microsOfFloatSum, rowsOf, type RowDoc } from '../../src/conversions/store';
import type { StageEvent } from '../../src/topology/types';
import { cleanupAll, freshDb } from '../helpers';

jest.setTimeout(60_000);
afterAll(cleanupAll);

const stage = conversionsStage({ name: 'lead-conversions', input: 'in', output: 'changes' });

function delivery(v: ConversionEvent, offset: number): StageEvent<ConversionEvent> {
  return {
    key: v.leadId,
    value: v,
    eventId: v.eventId,
    occurredAt: v.occurredAt,
    tenantId: v.tenantId,
    traceId: 't',
    topic: 'in',
    partition: 0,
    offset: String(offset),
    attempt: 1,
    headers: {},
    consumedAt: 0,
  };
}

const conversion = (eventId: string, leadId: string, amount: number | null): ConversionEvent => ({
  eventId,
  tenantId: 't1',
  leadId,
  conversionType: 'sold',
  occurredAt: 3_000,
  amount,
});

/** A row as the stage wrote it before amountMicros, version and pending existed. */
function oldRow(leadId: string, count: number, amount: number): RowDoc {
  const key = { tenantId: 't1', leadId, conversionType: 'sold' };
  return { _id: rowIdOf(key), ...key, count, amount, firstAt: 1_000, lastAt: 2_000, updatedAt: 0 };
}

async function run(db: Db, events: ConversionEvent[]) {
  const ctx = { stage: 'lead-conversions', db, now: () => 5_000 };
  return runBatch(
    stage.handler,
    events.map((e, i) => delivery(e, i)),
    ctx,
  );
}

test('an old row whose float sum is 0.1 + 0.2 is counted on, and its exact amount is written back', async () => {
  const { db } = await freshDb();
  await rowsOf(db).insertOne(oldRow('lead-old', 2, 0.1 + 0.2));
  const [out] = await run(db, [conversion('e3', 'lead-old', 0.1)]);
  expect(out).toMatchObject({ kind: 'done', outcome: 'applied' });
  const row = await rowsOf(db).findOne({ _id: oldRow('lead-old', 0, 0)._id });
  expect(row).toMatchObject({ count: 3, amount: 0.4, amountMicros: '400000', version: 1 });
});

test('a row that cannot be read fails only its own key, with STATE_UNREADABLE; the batch goes on', async () => {
  const { db } = await freshDb();
  // 0.1234567 is not a sum of whole millionths however it was rounded: its exact amount is unknown.
  await rowsOf(db).insertMany([oldRow('lead-bad', 1, 0.1234567), oldRow('lead-old', 2, 0.1 + 0.2)]);
  const outcomes = await run(db, [
    conversion('a1', 'lead-new', 5),
    conversion('b1', 'lead-bad', 1),
    conversion('c1', 'lead-old', 0.1),
    conversion('b2', 'lead-bad', 2),
    conversion('a2', 'lead-new', 0.25),
  ]);
  expect(outcomes.map((o) => (o.kind === 'failed' ? o.error.code : o.kind))).toEqual([
    'done',
    'STATE_UNREADABLE',
    'done',
    'held',
    'done',
  ]);
  const failed = outcomes[1]!;
  expect(failed.kind === 'failed' && failed.error.message).toMatch(/RSLeadGlobalConversions row .*lead-bad/);
  const rows = await rowsOf(db).find().sort({ leadId: 1 }).toArray();
  expect(rows.map((r) => [r.leadId, r.count, r.amount])).toEqual([
    ['lead-bad', 1, 0.1234567],
    ['lead-new', 2, 5.25],
    ['lead-old', 3, 0.4],
  ]);
});

test('a float sum of whole millionths gives its exact amount back; anything further off gives none', () => {
  let hot = 0;
  for (let i = 0; i < 90; i++) hot += 0.1;
  expect(hot).not.toBe(9);
  expect(microsOfFloatSum(hot, 90)).toBe(9_000_000n);
  expect(microsOfFloatSum(-0.1 - 0.2, 2)).toBe(-300_000n);
  expect(microsOfFloatSum(1234.5, 1)).toBe(1_234_500_000n);
  expect(microsOfFloatSum(0.1234567, 1)).toBeUndefined();
  expect(microsOfFloatSum(0.0000001, 1)).toBeUndefined();
  expect(microsOfFloatSum(Number.NaN, 1)).toBeUndefined();
});
