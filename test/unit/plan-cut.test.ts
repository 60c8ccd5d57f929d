// PlanCut: once a plan of a key failed in one write step, the key's later plans are left out of the
// steps that follow, its earlier ones and other keys' plans are not.
import { PlanCut, type PlanFailure } from '../../src/state/bulk';

const plan = (index: number, key: string) => ({ index, event: { key } });

test('a failure cuts its key from that plan on, and nothing else', () => {
  const plans = [plan(0, 'a'), plan(1, 'b'), plan(2, 'a'), plan(3, 'a'), plan(4, 'b')];
  const cut = new PlanCut(plans);
  const all: PlanFailure[] = [];
  cut.fail([{ index: 2, error: new Error('conflict') }], all);
  expect(plans.map((p) => cut.allows(p))).toEqual([true, true, false, false, true]);
  // A later step's failure of an earlier plan moves the cut back; the failures accumulate.
  cut.fail([{ index: 0, error: new Error('again') }], all);
  expect(plans.map((p) => cut.allows(p))).toEqual([false, true, false, false, true]);
  expect(all.map((f) => f.index)).toEqual([2, 0]);
});
