// The changelog rule, checked purely: a clean history passes; a re-emitted copy is a duplicate and
// breaks the chain as the topic stands, but not once copies are dropped; a lost change is a gap; a copy
// re-emitted after newer changes leaves the row's last change older than the table; a table row with
// no change is missing. Given the table's event count per row, missing and extra changes are counted
// one by one.
import { hasProblems, reportText, verifyChanges, type ChangeEntry } from '../../src/changes/verify';

const t = (count: number) => ({ count, amount: count * 10, firstAt: 1, lastAt: count });

let offset = 0;
function change(rowId: string, eventId: string, before: number | null, after: number): ChangeEntry {
  return {
    rowId,
    eventId,
    partition: 0,
    offset: String(offset++),
    before: before === null ? null : t(before),
    after: t(after),
  };
}

/** Row a: three events; row b: one. */
const clean = () => [
  change('a', 'e1', null, 1),
  change('b', 'f1', null, 1),
  change('a', 'e2', 1, 2),
  change('a', 'e3', 2, 3),
];
const table = () =>
  new Map<string, unknown>([
    ['a', t(3)],
    ['b', t(1)],
  ]);
/** The events the table applied per row: what the topic owes it. */
const counts = () =>
  new Map<string, number>([
    ['a', 3],
    ['b', 1],
  ]);

test('a clean history passes with every count at zero', () => {
  const r = verifyChanges(clean(), table());
  expect(r).toMatchObject({
    changes: 4,
    distinctEvents: 4,
    rows: 2,
    duplicates: 0,
    brokenChains: 0,
    gaps: 0,
    lastDiffers: 0,
    rowsWithoutChange: 0,
    rowsNotInTable: 0,
    extra: 0,
    missing: 0,
  });
  expect(hasProblems(r)).toBe(false);
  expect(verifyChanges(clean(), table(), counts())).toMatchObject({ extra: 0, missing: 0 });
  expect(reportText('changes.x', r)).toContain('ok:');
});

test('a redelivered batch re-emitted in full: duplicates and one broken chain, no gap, the table still matches', () => {
  const entries = [...clean(), change('a', 'e1', null, 1), change('a', 'e2', 1, 2), change('a', 'e3', 2, 3)];
  const r = verifyChanges(entries, table());
  expect(r.duplicates).toBe(3);
  expect(r.distinctEvents).toBe(4);
  expect(r.brokenChains).toBe(1);
  expect(r.gaps).toBe(0);
  expect(r.lastDiffers).toBe(0);
  expect(r.missing).toBe(0);
  expect(r.examples.duplicates).toEqual(['a']);
  expect(hasProblems(r)).toBe(true);
  expect(reportText('changes.x', r)).toMatch(/FAIL/);
});

test('a stale copy re-emitted after the newer changes: the last change differs from the table', () => {
  const entries = [...clean(), change('a', 'e1', null, 1)];
  const r = verifyChanges(entries, table());
  expect(r.duplicates).toBe(1);
  expect(r.lastDiffers).toBe(1);
  expect(r.examples.lastDiffers).toEqual(['a']);
  // Copies dropped, the history still folds into the table.
  expect(r.missing).toBe(0);
});

test('a change missing from the middle of a row is a gap, and the row is missing a change', () => {
  const entries = clean().filter((e) => e.eventId !== 'e2');
  const r = verifyChanges(entries, table());
  expect(r.gaps).toBe(1);
  expect(r.brokenChains).toBe(1);
  expect(r.examples.gaps).toEqual(['a']);
  expect(r.duplicates).toBe(0);
  expect(r.missing).toBe(1);
});

test('changes out of order within a row break the chain even with no copy', () => {
  const [a1, b1, a2, a3] = clean();
  const r = verifyChanges([a1!, b1!, a3!, a2!], table());
  expect(r.duplicates).toBe(0);
  expect(r.gaps).toBe(2);
  expect(r.lastDiffers).toBe(1);
  expect(r.missing).toBe(1);
});

test('a table row with no change, and a change of a row the table lacks, are both reported', () => {
  const tbl = table();
  tbl.set('c', t(2));
  const r = verifyChanges([...clean(), change('z', 'g1', null, 1)], tbl);
  expect(r.rowsWithoutChange).toBe(1);
  expect(r.examples.rowsWithoutChange).toEqual(['c']);
  expect(r.rowsNotInTable).toBe(1);
  expect(r.examples.rowsNotInTable).toEqual(['z']);
  // Row c owes a change; row z's change is one the table never applied.
  expect(r.missing).toBe(1);
  expect(r.extra).toBe(1);
  const counted = counts();
  counted.set('c', 2);
  expect(verifyChanges(clean(), tbl, counted)).toMatchObject({ missing: 2, extra: 0 });
});

test('with event counts, each change missing is counted, not each row', () => {
  // Row a's last two changes lost: the chain holds, the row ends at 1 instead of 3.
  const entries = clean().filter((e) => e.eventId !== 'e2' && e.eventId !== 'e3');
  expect(verifyChanges(entries, table()).missing).toBe(1);
  const r = verifyChanges(entries, table(), counts());
  expect(r).toMatchObject({ missing: 2, lastDiffers: 1, gaps: 0, duplicates: 0 });
});

test('a change the table applied without changing the row, missing, is caught only by the count', () => {
  // Appointments: a late event changes nothing (before equals after) and still owes its change.
  const entries = clean();
  const r = verifyChanges(entries, table(), new Map([...counts(), ['a', 4]]));
  expect(r).toMatchObject({ gaps: 0, lastDiffers: 0, missing: 1 });
  expect(hasProblems(r)).toBe(true);
  expect(reportText('changes.x', r)).toMatch(/1 missing/);
});

test('an event decided twice, its change emitted under another id, is an extra change', () => {
  // The second decision finds the row already at 3 and emits 3 → 3 with a new id: it chains and ends
  // at the table, so only the count tells it from a faithful changelog.
  const r = verifyChanges([...clean(), change('a', 'e3-again', 3, 3)], table(), counts());
  expect(r).toMatchObject({ duplicates: 0, gaps: 0, lastDiffers: 0, extra: 1, missing: 0 });
  expect(r.examples.extra).toEqual(['a']);
  expect(hasProblems(r)).toBe(true);
});

test('the same event id on two rows is not a duplicate (ids are per row: tenants may reuse them)', () => {
  const r = verifyChanges([change('a', 'e1', null, 1), change('b', 'e1', null, 1)], table());
  expect(r.duplicates).toBe(0);
});
