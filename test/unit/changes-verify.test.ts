// The changelog rule, checked purely: a clean history passes; a re-emitted copy is a duplicate and
// breaks the chain as the topic stands, but not once copies are dropped; a lost change is a gap; a copy
// re-emitted after newer changes leaves the row's last change older than the table; a table row with
// no change is missing.
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
    missing: 0,
  });
  expect(hasProblems(r)).toBe(false);
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
  expect(r.missing).toBe(2);
});

test('the same event id on two rows is not a duplicate (ids are per row: tenants may reuse them)', () => {
  const r = verifyChanges([change('a', 'e1', null, 1), change('b', 'e1', null, 1)], table());
  expect(r.duplicates).toBe(0);
});
