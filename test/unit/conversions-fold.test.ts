// The live conversions fold: O(1) per event against what the batch read, exact whatever the order,
// and it tells a new event, a duplicate, and an event whose row write or mark was lost in a crash apart.
import { foldConversion, type LeadState } from '../../src/conversions/fold';
import { archiveIdOf, exactTotalsOf, reduceConversions, rowIdOf } from '../../src/conversions/reducer';
import type { ConversionChange, ConversionEvent } from '../../src/conversions/schemas';
import type { StageEvent } from '../../src/topology/types';

const OUT = 'changes';

function ev(n: number, occurredAt: number, amount: number | null = null, type = 'sold'): ConversionEvent {
  return { eventId: `e${n}`, tenantId: 't1', leadId: 'l1', conversionType: type, occurredAt, amount };
}

function delivery(v: ConversionEvent, offset = 0): StageEvent<ConversionEvent> {
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

const empty = (): LeadState => ({ rows: new Map(), archived: new Map(), handled: new Map() });

function foldAll(events: ConversionEvent[], start: LeadState = empty()) {
  let s = start;
  const steps = events.map((e, i) => {
    const step = foldConversion(delivery(e, i), s, OUT);
    s = step.state;
    return step;
  });
  return { steps, state: s };
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let x = seed;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1664525 + 1013904223) >>> 0;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const sold = [ev(1, 1_000, 0.1), ev(2, 3_000, 0.2), ev(3, 2_000, 0.3), ev(4, 2_500), ev(5, 500, 7.25)];

test('folding events one at a time ends where the reducer over all of them does, in any order', () => {
  const [expected] = reduceConversions(sold);
  for (let seed = 1; seed <= 100; seed++) {
    const { steps } = foldAll(shuffled(sold, seed));
    const last = steps[steps.length - 1]!.emit[0]!.value as ConversionChange;
    expect(last.after).toStrictEqual({
      count: expected!.count,
      amount: expected!.amount,
      firstAt: expected!.firstAt,
      lastAt: expected!.lastAt,
    });
  }
});

test('each change starts where the previous ended; an event older than the row is out of order', () => {
  const { steps } = foldAll(sold);
  const changes = steps.map((s) => s.emit[0]!.value as ConversionChange);
  expect(changes[0]!.before).toBeNull();
  for (let i = 1; i < changes.length; i++) expect(changes[i]!.before).toStrictEqual(changes[i - 1]!.after);
  expect(changes.map((c) => c.outOfOrder)).toEqual([false, false, true, true, true]);
  expect(steps.every((s) => s.plan?.kind === 'count' && s.plan.archive === 'insert')).toBe(true);
});

test('a re-send inside the batch is a duplicate that re-emits the first change and plans nothing', () => {
  const { steps } = foldAll([sold[0]!, sold[1]!, { ...sold[0]! }]);
  expect(steps[2]!.plan).toBeNull();
  expect(steps[2]!.outcome).toBe('duplicate');
  expect(steps[2]!.emit[0]!.value).toStrictEqual(steps[0]!.emit[0]!.value);
});

test('an archived, counted event is a duplicate for ever and re-emits its recorded change', () => {
  const recorded = foldAll([sold[0]!]).steps[0]!.emit[0]!.value as ConversionChange;
  const s: LeadState = {
    ...empty(),
    archived: new Map([[archiveIdOf(sold[0]!), { event: sold[0]!, change: recorded, counted: true }]]),
  };
  const step = foldConversion(delivery(sold[0]!), s, OUT);
  expect(step.plan).toBeNull();
  expect(step.outcome).toBe('duplicate');
  expect(step.emit[0]!.value).toStrictEqual(recorded);
});

test('archived but unmarked: recognised when the row lists it, counted again when it does not', () => {
  const first = foldAll([sold[0]!]);
  const recorded = first.steps[0]!.emit[0]!.value as ConversionChange;
  const archived = new Map([[archiveIdOf(sold[0]!), { event: sold[0]!, change: recorded, counted: false }]]);
  const rowId = rowIdOf(sold[0]!);
  // Died after the row write, before the mark: the row counts e1 and lists it as pending.
  const rowWritten: LeadState = {
    ...empty(),
    archived,
    rows: new Map([
      [
        rowId,
        {
          key: { tenantId: 't1', leadId: 'l1', conversionType: 'sold' },
          version: 1,
          pending: new Set(['e1']),
          totals: exactTotalsOf([sold[0]!]),
        },
      ],
    ]),
  };
  const recognised = foldConversion(delivery(sold[0]!), rowWritten, OUT);
  expect(recognised.plan).toMatchObject({ kind: 'recognise', rowId });
  expect(recognised.emit[0]!.value).toStrictEqual(recorded);
  // Died after the archive insert, before the row write: no row counts e1, so it is counted now.
  const counted = foldConversion(delivery(sold[0]!), { ...empty(), archived }, OUT);
  expect(counted.plan).toMatchObject({ kind: 'count', archive: 'rewrite', version: 0 });
  expect((counted.emit[0]!.value as ConversionChange).after.count).toBe(1);
});

test('an amount finer than a millionth is refused with a reason, not rounded into the row', () => {
  expect(() => foldConversion(delivery(ev(9, 1, 0.0000001)), empty(), OUT)).toThrow(/millionths/);
});

test('the same event id from two tenants on one lead key is two events, each counted on its own row', () => {
  const a = ev(1, 1_000, 5);
  const b = { ...a, tenantId: 't2' };
  const { steps } = foldAll([a, b]);
  expect(steps.map((x) => x.plan?.kind)).toEqual(['count', 'count']);
  expect(steps.map((x) => (x.emit[0]!.value as ConversionChange).tenantId)).toEqual(['t1', 't2']);
  expect(steps.map((x) => (x.emit[0]!.value as ConversionChange).after.count)).toEqual([1, 1]);
  // Archived under one tenant, the id is still new for the other.
  const recorded = steps[0]!.emit[0]!.value as ConversionChange;
  const s: LeadState = {
    ...empty(),
    archived: new Map([[archiveIdOf(a), { event: a, change: recorded, counted: true }]]),
  };
  expect(foldConversion(delivery(b), s, OUT).plan).toMatchObject({ kind: 'count', archive: 'insert' });
  expect(foldConversion(delivery(a), s, OUT).outcome).toBe('duplicate');
});

test('a re-send of an id with another amount is refused as EVENT_ID_REUSED naming the field', () => {
  const first = sold[0]!;
  const recorded = foldAll([first]).steps[0]!.emit[0]!.value as ConversionChange;
  const s: LeadState = {
    ...empty(),
    archived: new Map([[archiveIdOf(first), { event: first, change: recorded, counted: true }]]),
  };
  let err: unknown;
  try {
    foldConversion(delivery({ ...first, amount: 99 }), s, OUT);
  } catch (e) {
    err = e;
  }
  expect(err).toMatchObject({
    code: 'EVENT_ID_REUSED',
    retriable: false,
    details: { tenantId: 't1', eventId: 'e1', fields: ['amount'] },
  });
  expect((err as Error).message).toMatch(/amount \(first 0\.1, now 99\)/);
  // Inside one batch too: the second send differs in type and time from the first.
  expect(() => foldAll([first, { ...first, conversionType: 'contacted', occurredAt: 7 }])).toThrow(
    /conversionType .*occurredAt .*differ/,
  );
  // Archived but not yet counted (a crash tail): the re-send is refused before anything is counted.
  const unmarked: LeadState = {
    ...empty(),
    archived: new Map([[archiveIdOf(first), { event: first, change: recorded, counted: false }]]),
  };
  expect(() => foldConversion(delivery({ ...first, leadId: 'l2' }), unmarked, OUT)).toThrow(/leadId/);
});
