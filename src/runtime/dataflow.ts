// A dataflow: what one domain folder contributes to the application — its topics and stages, its
// HTTP routes, its tables' indexes, and what replay needs to recompute its tables.
import type { RouteModule } from '../api/server';
import type { ReplayTable } from '../replay/types';
import type { CollectionIndexes } from '../state/mongo';
import type { StageSpec, TopicSpec } from '../topology/types';
import type { ProcessorContext } from './processor';

/** A query the code runs, so the index test can explain it (`test/integration/indexes.test.ts`). */
export interface DeclaredQuery {
  name: string;
  /**
   * Run by a live stage. The hot path touches documents by _id only, in bulk: a hot query's filter
   * may name `_id` (a value or `$in`) plus guard fields, and never sorts (test/unit/hot-path.test.ts).
   */
  hot?: boolean;
  collection: string;
  filter: Record<string, unknown>;
  sort?: Record<string, 1 | -1>;
}

export interface Dataflow {
  name: string;
  topics: TopicSpec[];
  stages: StageSpec[];
  indexes: CollectionIndexes[];
  queries: DeclaredQuery[];
  replay: ReplayTable[];
  /** Routes of the public listener (customer API, authenticated per customer). */
  routes?(ctx: ProcessorContext): RouteModule;
  /** Routes of the admin listener (operators' tables), behind the admin token. */
  adminRoutes?(ctx: ProcessorContext): RouteModule;
}
