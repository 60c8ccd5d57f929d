// The hot-path rule, kept by a test: every query a live stage runs touches documents by _id (a value
// or an $in list, plus guard fields), and never sorts — so its cost stays flat as tables grow. Each
// live collection's guard fields are named here; a new hot query with any other shape fails. These are the
// declarations; test/scenarios/hot-path-live.test.ts holds the stages to them on the commands they send.
import { appDataflows } from '../../src/app/dataflows';
import type { DeclaredQuery } from '../../src/runtime/dataflow';

const hot: DeclaredQuery[] = appDataflows()
  .flatMap((f) => f.queries)
  .filter((q) => q.hot === true);

test('the live stages declare their hot queries', () => {
  const collections = new Set(hot.map((q) => q.collection));
  for (const c of [
    'RSAppointment',
    'RSAppointmentChanges',
    'RSLeadGlobalConversions',
    'RSLeadConversionEvents',
  ]) {
    expect(collections).toContain(c);
  }
});

test.each(hot.map((q) => [q.name, q] as const))('%s is by _id and sorts nothing', (_name, q) => {
  expect(q.sort).toBeUndefined();
  const id = q.filter._id;
  expect(id).toBeDefined();
  const byValue = typeof id === 'string' || typeof id === 'number';
  const byList = typeof id === 'object' && id !== null && Object.keys(id).join() === '$in';
  expect(byValue || byList).toBe(true);
  // Besides _id, only equality guards on the document itself (a version, a base version).
  for (const [field, value] of Object.entries(q.filter)) {
    if (field === '_id') continue;
    expect(typeof value === 'object' && value !== null).toBe(false);
  }
});
