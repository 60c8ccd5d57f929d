// The conversions reducer: a row is a function of the set of distinct events, whatever their order
// or number of deliveries; the stage's decision re-emits the recorded change for a duplicate.
import {
  applyConversion,
  reduceConversions,
  totalsOf,
  type ConversionState,
} from '../../src/conversions/reducer';
import type { ConversionChange, ConversionEvent } from '../../src/conversions/schemas';

function ev(
  n: number,
  over: Partial<ConversionEvent> & Pick<ConversionEvent, 'occurredAt'>,
): ConversionEvent {
  return {
    eventId: `e${n}`,
    tenantId: 't1',
    leadId: 'l1',
    conversionType: 'sold',
    amount: null,
    ...over,
  };
}

/** A seeded shuffle, so a failing permutation can be reproduced. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// Amounts whose float sum depends on the order of addition (0.1 + 0.2 + 0.3 !== 0.3 + 0.2 + 0.1).
const events: ConversionEvent[] = [
  ev(1, { occurredAt: 1_000, amount: 0.1 }),
  ev(2, { occurredAt: 3_000, amount: 0.2 }),
  ev(3, { occurredAt: 2_000, amount: 0.3 }),
  ev(4, { occurredAt: 2_000, amount: null }),
  ev(5, { occurredAt: 5_000, amount: 1e16 }),
  ev(6, { occurredAt: 4_000, amount: 1 }),
  ev(7, { occurredAt: 500, conversionType: 'contacted' }),
  ev(8, { occurredAt: 900, conversionType: 'contacted', amount: 2.5 }),
  ev(9, { occurredAt: 700, leadId: 'l2', conversionType: 'appointment_set' }),
  ev(10, { occurredAt: 700, tenantId: 't2', conversionType: 'contacted' }),
];

test('any permutation of the events gives the same rows, bit for bit', () => {
  const reference = reduceConversions(events);
  expect(reference).toHaveLength(4);
  for (let seed = 1; seed <= 200; seed++) {
    expect(reduceConversions(shuffled(events, seed))).toStrictEqual(reference);
  }
});

test('a duplicated event id counts once, however many times and wherever it appears', () => {
  const withDuplicates = [...events, events[0]!, events[4]!, events[0]!, events[8]!];
  for (let seed = 1; seed <= 50; seed++) {
    expect(reduceConversions(shuffled(withDuplicates, seed))).toStrictEqual(reduceConversions(events));
  }
});

test('null amounts count as 0; firstAt and lastAt are the earliest and latest occurredAt', () => {
  const sold = events.filter((e) => e.leadId === 'l1' && e.tenantId === 't1' && e.conversionType === 'sold');
  expect(totalsOf(sold)).toEqual({
    count: 6,
    amount: 0.1 + 0.3 + 0 + 0.2 + 1 + 1e16,
    firstAt: 1_000,
    lastAt: 5_000,
  });
  expect(totalsOf([ev(1, { occurredAt: 7, amount: null })])).toEqual({
    count: 1,
    amount: 0,
    firstAt: 7,
    lastAt: 7,
  });
  expect(totalsOf([])).toBeNull();
  const row = reduceConversions(events).find((r) => r.conversionType === 'contacted' && r.tenantId === 't1');
  expect(row).toEqual({
    tenantId: 't1',
    leadId: 'l1',
    conversionType: 'contacted',
    count: 2,
    amount: 2.5,
    firstAt: 500,
    lastAt: 900,
  });
});

/** Runs the stage's decision over deliveries against an in-memory archive, as the live stage would. */
function runStage(deliveries: ConversionEvent[]) {
  const archive = new Map<string, { event: ConversionEvent; change: ConversionChange }>();
  const emitted: ConversionChange[] = [];
  for (const e of deliveries) {
    const sameRow = [...archive.values()]
      .map((a) => a.event)
      .filter(
        (x) => x.tenantId === e.tenantId && x.leadId === e.leadId && x.conversionType === e.conversionType,
      );
    const state: ConversionState = {
      recorded: archive.get(e.eventId)?.change ?? null,
      rowEvents: sameRow,
      stored: totalsOf(sameRow),
    };
    const out = applyConversion(e, state);
    if (out.plan.archive) archive.set(e.eventId, { event: e, change: out.plan.archive });
    emitted.push(out.change);
  }
  return { archive, emitted };
}

test('the stage decision: one change per delivery, the recorded one again for a duplicate', () => {
  const sold = events.filter((e) => e.leadId === 'l1' && e.tenantId === 't1' && e.conversionType === 'sold');
  const deliveries = [...shuffled(sold, 7), sold[0]!, sold[3]!];
  const { emitted } = runStage(deliveries);
  const firstTimes = emitted.slice(0, sold.length);
  // before → after chain: each change starts where the previous one ended.
  expect(firstTimes[0]!.before).toBeNull();
  for (let i = 1; i < firstTimes.length; i++) expect(firstTimes[i]!.before).toEqual(firstTimes[i - 1]!.after);
  expect(firstTimes[firstTimes.length - 1]!.after).toEqual(totalsOf(sold));
  // The re-sent events re-emit exactly what their first delivery emitted.
  expect(emitted[sold.length]).toStrictEqual(firstTimes.find((c) => c.eventId === sold[0]!.eventId));
  expect(emitted[sold.length + 1]).toStrictEqual(firstTimes.find((c) => c.eventId === sold[3]!.eventId));
  // An event older than the row's lastAt is flagged out of order; the first of a row never is.
  for (const c of firstTimes) expect(c.outOfOrder).toBe(c.before !== null && c.occurredAt < c.before.lastAt);
});

test('a duplicate whose row lags the archive asks for the row to be re-derived', () => {
  const a = ev(1, { occurredAt: 10, amount: 1 });
  const first = applyConversion(a, { recorded: null, rowEvents: [], stored: null });
  expect(first.plan.setRow).toBe(true);
  // The run died after archiving: the archive has the event, the row does not.
  const again = applyConversion(a, { recorded: first.change, rowEvents: [a], stored: null });
  expect(again.plan).toMatchObject({ archive: null, setRow: true, after: first.change.after });
  expect(again.change).toStrictEqual(first.change);
  // The row caught up: nothing to write.
  const third = applyConversion(a, { recorded: first.change, rowEvents: [a], stored: first.change.after });
  expect(third.plan.setRow).toBe(false);
});
