// The conversions reducer: a row is a function of the set of distinct events, whatever their order
// or number of deliveries; amounts are summed exactly in millionths.
import { reduceConversions, toMicros, totalsOf } from '../../src/conversions/reducer';
import type { ConversionEvent } from '../../src/conversions/schemas';

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
  ev(5, { occurredAt: 5_000, amount: 1e9 }),
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
    amount: 1_000_000_001.6,
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

test('amounts are exact in millionths; finer or larger amounts are refused, not rounded', () => {
  expect(toMicros(0.1)).toBe(100_000n);
  expect(toMicros(-12.345678)).toBe(-12_345_678n);
  expect(toMicros(null)).toBe(0n);
  expect(() => toMicros(1e-7)).toThrow(/millionths/);
  expect(() => toMicros(1e16)).toThrow(/millionths/);
  expect(() => toMicros(Number.NaN)).toThrow(/millionths/);
});

test('one event id from two tenants is two events: replay counts it on each tenant’s row', () => {
  const a = ev(1, { occurredAt: 1_000, amount: 2 });
  const rows = reduceConversions([a, { ...a, tenantId: 't2' }, { ...a }]);
  expect(rows.map((r) => [r.tenantId, r.count, r.amount])).toEqual([
    ['t1', 1, 2],
    ['t2', 1, 2],
  ]);
});
