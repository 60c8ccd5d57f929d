// Reads a find's explain output down to one verdict: does the winning plan use an index, or scan the
// collection? Used by the index test to prove every declared query; pure, so it is unit-tested on the
// shapes MongoDB (classic and slot-based engine) and SecantusDB answer with.

export type PlanVerdict = 'index' | 'collscan' | 'no-index' | 'no-plan';

export interface PlanSummary {
  verdict: PlanVerdict;
  /** Stage names of the winning plan, outermost first, e.g. ['SORT', 'FETCH', 'IXSCAN']. */
  stages: string[];
  /** Names of the indexes the winning plan reads. */
  indexes: string[];
  /** The plan sorts in memory: correct, but the index does not give the requested order. */
  inMemorySort: boolean;
}

/** Stages that read an index, across MongoDB 4.4–8 (EXPRESS_* are 8.0's fast paths for _id and equality). */
const INDEX_STAGES = new Set([
  'IXSCAN',
  'IDHACK',
  'EXPRESS_IXSCAN',
  'EXPRESS_CLUSTERED_IXSCAN',
  'CLUSTERED_IXSCAN',
  'COUNT_SCAN',
  'DISTINCT_SCAN',
]);

/** Where a plan node keeps its children; nothing else is walked, so a filter value named "stage" is ignored. */
const CHILD_KEYS = ['inputStage', 'inputStages', 'innerStage', 'outerStage', 'thenStage', 'elseStage'];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function winningPlans(explain: unknown): Record<string, unknown>[] {
  if (!isObject(explain)) return [];
  const planner = explain.queryPlanner;
  const plans: unknown[] = [];
  if (isObject(planner)) {
    plans.push(planner.winningPlan);
    // A sharded cluster answers with one winning plan per shard.
    if (isObject(planner.winningPlan) && Array.isArray(planner.winningPlan.shards)) {
      for (const shard of planner.winningPlan.shards) if (isObject(shard)) plans.push(shard.winningPlan);
    }
  }
  return plans.filter(isObject).map((plan) =>
    // The slot-based engine (MongoDB 7+) nests the familiar stage tree under queryPlan.
    isObject(plan.queryPlan) ? plan.queryPlan : plan,
  );
}

function walk(node: unknown, into: PlanSummary): void {
  if (Array.isArray(node)) {
    for (const child of node) walk(child, into);
    return;
  }
  if (!isObject(node)) return;
  if (typeof node.stage === 'string') {
    into.stages.push(node.stage);
    if (INDEX_STAGES.has(node.stage) && typeof node.indexName === 'string') into.indexes.push(node.indexName);
    if (node.stage === 'SORT') into.inMemorySort = true;
  }
  for (const key of CHILD_KEYS) walk(node[key], into);
}

export function summarizePlan(explain: unknown): PlanSummary {
  const summary: PlanSummary = { verdict: 'no-plan', stages: [], indexes: [], inMemorySort: false };
  for (const plan of winningPlans(explain)) walk(plan, summary);
  if (summary.stages.length === 0) return summary;
  if (summary.stages.includes('COLLSCAN')) summary.verdict = 'collscan';
  else if (summary.stages.some((s) => INDEX_STAGES.has(s))) summary.verdict = 'index';
  else summary.verdict = 'no-index';
  return summary;
}

/** One line for a test log: "FETCH < IXSCAN lead_tenant_type" (child after parent). */
export function describePlan(summary: PlanSummary): string {
  const indexes = summary.indexes.length ? ` ${summary.indexes.join(', ')}` : '';
  return `${summary.stages.join(' < ') || 'no plan'}${indexes}`;
}
