// Checkpoints of full replay passes in `keyflow_replay_runs`, one document per run: per shard, where its
// walk stands and what it counted, plus the first differences and conflicts found. A shard writes its
// checkpoint after every batch in one atomic update, so an interrupted run resumes at its last batch.
import { randomBytes } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { classify, KeyflowError } from '../errors';
import type { CollectionIndexes } from '../state/mongo';
import type { Conflict } from './engine';
import { SHARD_HASH } from './shard';
import type { Difference } from './types';

export const REPLAY_RUNS_COLLECTION = 'keyflow_replay_runs';

/** Runs are read by _id only. */
export const REPLAY_RUNS_INDEXES: CollectionIndexes = { collection: REPLAY_RUNS_COLLECTION, indexes: [] };

export interface ShardCounts {
  /** Entities of this shard replayed. */
  checked: number;
  /** Entities with at least one difference on their first comparison. */
  withDifferences: number;
  /** Entities whose differences were all repaired. */
  repaired: number;
  /** Entities with a repair that kept meeting concurrent live updates. */
  conflicts: number;
  /** Entities with differences left at the end of their replay. */
  remaining: number;
  /** Differences found, all entities together. */
  differences: number;
}

export interface ShardCheckpoint extends ShardCounts {
  /** Index of the entity group (tables sharing an `entity`) being walked; all groups done when `done`. */
  group: number;
  /** Last entity id walked in that group (by range: within the shard's range; by hash: of every id). */
  after: string | null;
  done: boolean;
}

export interface ReplayRunDoc {
  _id: string;
  status: 'running' | 'done';
  startedAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
  shards: number;
  /** How ids map to shards: SHARD_HASH, or RANGE_SHARDS with `bounds` (then SHARD_HASH in a null group). */
  hash: string;
  /**
   * Per entity group, the shards' upper bounds (shard s walks (bounds[s-1], bounds[s]]), or null for a
   * group whose tables cannot walk their ids: its shards page every id and keep their SHARD_HASH share.
   */
  bounds?: (string[] | null)[];
  repair: boolean;
  batch: number;
  /** The entity kinds walked, in order, and the tables replayed: a resume must see the same ones. */
  groups: string[];
  tables: string[];
  estimate: number | null;
  sessions: number;
  /** Keyed `s<shard>` rather than an array so one shard's update never rewrites another's. */
  progress: Record<string, ShardCheckpoint>;
  /** The first `maxDifferences` differences found; `differences` counts in progress hold the total. */
  differences: Difference[];
  conflicts: Conflict[];
  lastError?: string;
}

export const ZERO_COUNTS: ShardCounts = {
  checked: 0,
  withDifferences: 0,
  repaired: 0,
  conflicts: 0,
  remaining: 0,
  differences: 0,
};

export function sumCounts(items: readonly ShardCounts[]): ShardCounts {
  const out = { ...ZERO_COUNTS };
  for (const c of items) for (const k of Object.keys(out) as (keyof ShardCounts)[]) out[k] += c[k];
  return out;
}

export function shardKey(shard: number): string {
  return `s${shard}`;
}

/** Sortable by start time, unique enough to name a run on a command line. */
export function newRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `replay-${stamp}-${randomBytes(3).toString('hex')}`;
}

async function store<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    const e = classify(err);
    throw new KeyflowError(e.code, `${what} in ${REPLAY_RUNS_COLLECTION}: ${e.message}`, {
      retriable: e.retriable,
      cause: err,
    });
  }
}

export class ReplayRuns {
  private readonly coll: Collection<ReplayRunDoc>;

  constructor(db: Db) {
    this.coll = db.collection<ReplayRunDoc>(REPLAY_RUNS_COLLECTION);
  }

  get(runId: string): Promise<ReplayRunDoc | null> {
    return store(`reading run ${runId}`, () => this.coll.findOne({ _id: runId }));
  }

  async create(
    init: Pick<ReplayRunDoc, 'shards' | 'repair' | 'batch' | 'groups' | 'tables' | 'estimate'> & {
      runId: string;
      hash?: string;
      bounds?: (string[] | null)[];
    },
  ): Promise<ReplayRunDoc> {
    const now = new Date();
    const progress: Record<string, ShardCheckpoint> = {};
    for (let s = 0; s < init.shards; s++) {
      progress[shardKey(s)] = { ...ZERO_COUNTS, group: 0, after: null, done: init.groups.length === 0 };
    }
    const { runId, ...rest } = init;
    const doc: ReplayRunDoc = {
      _id: runId,
      status: 'running',
      startedAt: now,
      updatedAt: now,
      hash: SHARD_HASH,
      sessions: 1,
      progress,
      differences: [],
      conflicts: [],
      ...rest,
    };
    await store(`creating run ${runId}`, () => this.coll.insertOne(doc));
    return doc;
  }

  /** Counts one more session of the run (a resume). */
  async resumed(runId: string): Promise<void> {
    await store(`resuming run ${runId}`, () =>
      this.coll.updateOne({ _id: runId }, { $inc: { sessions: 1 }, $set: { updatedAt: new Date() } }),
    );
  }

  /** One shard's batch: its new checkpoint and what it found, in one atomic update. */
  async checkpoint(
    runId: string,
    shard: number,
    cp: ShardCheckpoint,
    found: { differences: Difference[]; conflicts: Conflict[]; max: number },
  ): Promise<void> {
    const update: Record<string, unknown> = {
      $set: { [`progress.${shardKey(shard)}`]: cp, updatedAt: new Date() },
    };
    const push: Record<string, unknown> = {};
    if (found.differences.length) push.differences = { $each: found.differences, $slice: found.max };
    if (found.conflicts.length) push.conflicts = { $each: found.conflicts, $slice: found.max };
    if (Object.keys(push).length) update.$push = push;
    await store(`checkpointing run ${runId}`, () => this.coll.updateOne({ _id: runId }, update));
  }

  async finish(runId: string, outcome: { error?: string }): Promise<void> {
    const now = new Date();
    const set: Partial<ReplayRunDoc> = outcome.error
      ? { updatedAt: now, lastError: outcome.error }
      : { updatedAt: now, status: 'done', finishedAt: now };
    await store(`closing run ${runId}`, () => this.coll.updateOne({ _id: runId }, { $set: set }));
  }
}
