// What a domain gives replay for each of its tables: how to load an entity's archived events, how to
// recompute the table's rows from them with the live reducer, how to read the rows as they are, and
// how to write corrected rows without racing the live stage.
import type { Db } from 'mongodb';

export type Row = Record<string, unknown> & { _id: unknown };

export interface Difference {
  entityId: string;
  table: string;
  /** The row's identity within the table (its _id as text). */
  row: string;
  /** A field name, or `(row)` when the whole row is missing or unexpected. */
  field: string;
  expected: unknown;
  actual: unknown;
}

export interface ReplayTable {
  /** The collection name, e.g. `RSLeadGlobalConversions`. */
  table: string;
  /** Derived tables are recomputed first, temporal ones next (the RFC's order). */
  kind: 'derived' | 'temporal';
  /** The input's entity id (the Kafka key) this table is recomputed for. */
  entity: string;
  /** Recomputes the entity's rows from its archived events, with the very reducer the live stage uses. */
  expected(db: Db, entityId: string): Promise<Row[]>;
  /** The entity's rows as they are in the table now. */
  actual(db: Db, entityId: string): Promise<Row[]>;
  /** Fields compared; others (timestamps of processing, the guard's `_applied`) are not. */
  fields: string[];
  /**
   * Writes the expected rows (and removes unexpected ones) for the entity, guarded so a concurrent live
   * update is not overwritten: typically under the entity lease, or conditional on what was read.
   */
  repair(db: Db, entityId: string, expected: Row[], actual: Row[]): Promise<void>;
  /** Every entity id with archived events, in a stable order, starting after `after` (for resuming). */
  entityIds(db: Db, after: string | undefined, batch: number): Promise<string[]>;
  /**
   * Optional: about how many entity ids `entityIds` walks, for the full pass's progress and ETA. A rough
   * count is fine (e.g. an estimated document count over average events per entity); without it the
   * progress shows counts and rate only.
   */
  estimateEntities?(db: Db): Promise<number>;
  /**
   * Optional batched forms of expected() and actual() for the full pass: one query per table for a page
   * of entity ids instead of one per entity. Entities they find clean need nothing more; the others are
   * checked (and repaired) one by one. Every id asked for is a key of the answer.
   */
  expectedMany?(db: Db, ids: readonly string[]): Promise<Map<string, Row[]>>;
  actualMany?(db: Db, ids: readonly string[]): Promise<Map<string, Row[]>>;
  /**
   * Optional: readies what the reads above need before a replay (builds the `_id`-keyed entity history
   * of events archived before the live path kept it; see state/entity-history.ts). Idempotent.
   */
  prepare?(db: Db): Promise<void>;
  /**
   * Optional: every entity id after `after` up to `to` (inclusive), in order, as one streaming read —
   * the full pass walks a shard's id range with it instead of paging with `entityIds`.
   */
  walkIds?(db: Db, after: string | undefined, to: string | undefined): AsyncIterable<string>;
  /**
   * Optional, with walkIds: at most about `n` entity ids spread over all of them, to cut the shards' id
   * ranges; `complete` when they are every id (the table holds at most `n`): the full pass then pages
   * its shards from this one read instead of walking each range.
   */
  sampleIds?(db: Db, n: number): Promise<{ ids: string[]; complete: boolean }>;
  /** Optional: the entities a live write touched at or after `since` (`keyflow replay --since`). */
  touchedIds?(db: Db, since: Date): AsyncIterable<string>;
}

/** Groups documents by an id field into a map holding every asked id (empty lists for the rest). */
export function groupByEntity<T>(
  ids: readonly string[],
  docs: readonly T[],
  idOf: (d: T) => string,
): Map<string, T[]> {
  const out = new Map<string, T[]>(ids.map((id) => [id, []]));
  for (const d of docs) out.get(idOf(d))?.push(d);
  return out;
}
