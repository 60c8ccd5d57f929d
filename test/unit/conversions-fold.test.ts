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

test('a re-send inside the batch is a duplicate that emits nothing and plans nothing', () => {
  const { steps } = foldAll([sold[0]!, sold[1]!, { ...sold[0]! }]);
  expect(steps[2]!.plan).toBeNull();
  expect(steps[2]!.outcome).toBe('duplicate');
  expect(steps[2]!.emit).toEqual([]);
  // The first copy's plan stores its change with the input record that made it.
  expect(steps[0]!.plan).toMatchObject({ kind: 'count', input: { topic: 'in', partition: 0, offset: '0' } });
});

/** The change `v` makes on an empty row, as the live fold first stored it, and the plan that stored it. */
function firstCount(v: ConversionEvent, offset: number) {
  const step = foldConversion(delivery(v, offset), empty(), OUT);
  if (step.plan?.kind !== 'count') throw new Error('expected a count');
  return { change: step.plan.change, input: step.plan.input, emitted: step.emit };
}

test('a counted event re-sends its stored change to its own input record only, for ever', () => {
  const first = firstCount(sold[0]!, 7);
  const counted = (input?: { topic: string; partition: number; offset: string }): LeadState => ({
    ...empty(),
    archived: new Map([
      [archiveIdOf(sold[0]!), { event: sold[0]!, change: first.change, input, counted: true }],
    ]),
  });
  // The redelivery of offset 7 (its emission never became visible): the stored change, byte for byte.
  const again = foldConversion(delivery(sold[0]!, 7), counted(first.input), OUT);
  expect(again).toMatchObject({ plan: null, outcome: 'duplicate' });
  expect(JSON.stringify(again.emit)).toBe(JSON.stringify(first.emitted));
  // An upstream re-send at another offset, however far: nothing.
  for (const offset of [8, 10_007]) {
    const resend = foldConversion(delivery(sold[0]!, offset), counted(first.input), OUT);
    expect(resend).toMatchObject({ plan: null, outcome: 'duplicate', emit: [] });
  }
  // Another partition at the same offset is another record.
  const elsewhere = { ...delivery(sold[0]!, 7), partition: 1 };
  expect(foldConversion(elsewhere, counted(first.input), OUT).emit).toEqual([]);
  // An entry archived before inputs were stored re-sends to any copy (the old at-least-once rule).
  expect(foldConversion(delivery(sold[0]!, 8), counted(undefined), OUT).emit[0]!.value).toStrictEqual(
    first.change,
  );
});

test('a re-drive of the letter written for the input record re-sends; one of another letter does not', () => {
  const first = firstCount(sold[0]!, 7);
  const s: LeadState = {
    ...empty(),
    archived: new Map([
      [archiveIdOf(sold[0]!), { event: sold[0]!, change: first.change, input: first.input, counted: true }],
    ]),
  };
  // Its state written, its change could not be built and went to the dead-letter topic: the re-drive
  // (a new record, at offset 40) of that letter stands for offset 7.
  const redriven = { ...delivery(sold[0]!, 40), redrive: { letter: 'lead-conversions:in:0:7' } };
  expect(foldConversion(redriven, s, OUT).emit[0]!.value).toStrictEqual(first.change);
  const other = { ...delivery(sold[0]!, 41), redrive: { letter: 'lead-conversions:in:0:9' } };
  expect(foldConversion(other, s, OUT).emit).toEqual([]);
  // A re-drive that counts the event stores the letter's record as its input.
  expect(foldConversion(redriven, empty(), OUT).plan).toMatchObject({
    input: { topic: 'in', partition: 0, offset: '7' },
  });
});

test('archived but unmarked: recognised when the row lists it, counted again when it does not', () => {
  const first = firstCount(sold[0]!, 0);
  const recorded = first.change;
  const archived = new Map([
    [archiveIdOf(sold[0]!), { event: sold[0]!, change: recorded, input: first.input, counted: false }],
  ]);
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
  // A re-send at another offset only marks it: the redelivery of offset 0 sends the change.
  const marked = foldConversion(delivery(sold[0]!, 5), rowWritten, OUT);
  expect(marked.plan).toMatchObject({ kind: 'recognise', rowId });
  expect(marked.emit).toEqual([]);
  // Died after the archive insert, before the row write: no row counts e1, so it is counted now, by
  // whichever record carries it, and stored with that record as its input.
  const counted = foldConversion(delivery(sold[0]!, 5), { ...empty(), archived }, OUT);
  expect(counted.plan).toMatchObject({
    kind: 'count',
    archive: 'rewrite',
    version: 0,
    input: { topic: 'in', partition: 0, offset: '5' },
  });
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
