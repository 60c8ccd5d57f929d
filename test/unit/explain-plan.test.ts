// summarizePlan reduces an explain answer to the index test's verdict; the shapes below are what MongoDB's
// classic engine, its slot-based engine (7+), a sharded cluster, SecantusDB and FerretDB 1.x answer.
import { describePlan, summarizePlan } from '../../src/state/explain';

const explain = (winningPlan: unknown) => ({ queryPlanner: { winningPlan }, ok: 1 });
const ixscan = (indexName: string) => ({ stage: 'IXSCAN', indexName, keyPattern: { a: 1 } });

test('FETCH over IXSCAN is an index plan and names the index', () => {
  const plan = summarizePlan(explain({ stage: 'FETCH', inputStage: ixscan('a_1') }));
  expect(plan).toEqual({
    verdict: 'index',
    stages: ['FETCH', 'IXSCAN'],
    indexes: ['a_1'],
    inMemorySort: false,
  });
  expect(describePlan(plan)).toBe('FETCH < IXSCAN a_1');
});

test('a COLLSCAN anywhere wins over an index branch', () => {
  const or = {
    stage: 'SUBPLAN',
    inputStage: { stage: 'OR', inputStages: [ixscan('a_1'), { stage: 'COLLSCAN' }] },
  };
  expect(summarizePlan(explain(or)).verdict).toBe('collscan');
});

test('a SORT above the index is recorded as an in-memory sort, still an index plan', () => {
  const plan = summarizePlan(
    explain({ stage: 'SORT', inputStage: { stage: 'FETCH', inputStage: ixscan('a_1') } }),
  );
  expect(plan.verdict).toBe('index');
  expect(plan.inMemorySort).toBe(true);
});

test('IDHACK and EXPRESS_IXSCAN count as index stages', () => {
  expect(summarizePlan(explain({ stage: 'IDHACK' })).verdict).toBe('index');
  expect(summarizePlan(explain({ stage: 'EXPRESS_IXSCAN', indexName: '_id_' })).indexes).toEqual(['_id_']);
});

test('the slot-based engine nests the stage tree under queryPlan', () => {
  const sbe = {
    queryPlan: { stage: 'FETCH', inputStage: ixscan('b_1') },
    slotBasedPlan: { stages: '[1] ixseek' },
  };
  expect(summarizePlan(explain(sbe))).toMatchObject({ verdict: 'index', indexes: ['b_1'] });
});

test('a sharded answer is judged over every shard', () => {
  const sharded = {
    stage: 'SHARD_MERGE',
    shards: [
      { winningPlan: { stage: 'FETCH', inputStage: ixscan('a_1') } },
      { winningPlan: { stage: 'COLLSCAN' } },
    ],
  };
  expect(summarizePlan(explain(sharded)).verdict).toBe('collscan');
});

test('a stage tree without scan stages is neither; EOF of a missing collection proves nothing', () => {
  expect(summarizePlan(explain({ stage: 'EOF' })).verdict).toBe('no-index');
});

test('a filter value named "stage" is not mistaken for a plan node', () => {
  const plan = summarizePlan(explain({ stage: 'COLLSCAN', filter: { stage: { $eq: 'IXSCAN' } } }));
  expect(plan.stages).toEqual(['COLLSCAN']);
});

test('answers without a stage tree are no-plan (FerretDB 1.x explains its SQL)', () => {
  expect(summarizePlan({ queryPlanner: { Plan: 'SCAN keyflow' }, pushdown: true }).verdict).toBe('no-plan');
  expect(summarizePlan(undefined).verdict).toBe('no-plan');
  expect(describePlan(summarizePlan({}))).toBe('no plan');
});
