// Bulk writes for batch stages: one unordered bulkWrite per collection, and each failed operation
// mapped back to the plan it came from, so only those events retry and the rest of the batch commits.
import { randomUUID } from 'node:crypto';
import type {
  AnyBulkWriteOperation,
  Collection,
  Document,
  Filter,
  IndexDescription,
  UpdateFilter,
} from 'mongodb';
import { classify, KeyflowError } from '../errors';
import { concurrentUpdate, isDuplicateKey } from './conflicts';

/** A plan index with the error that stopped its operation. */
export interface PlanFailure {
  index: number;
  error: unknown;
}

/**
 * The index a collection's guarded writes want: `_id` plus the guard fields, unique (it is, _id being
 * unique). MongoDB serves `{_id, version}` by the _id index alone and this costs it one small index;
 * mongo-java-server picks an index only when a filter names exactly that index's fields, and without
 * it every guarded write scans the collection — a cost that grows with the table.
 */
export function guardIndex(...fields: string[]): IndexDescription {
  return {
    key: Object.fromEntries([['_id', 1], ...fields.map((f) => [f, 1])]),
    name: `guard_${fields.join('_')}`,
    unique: true,
  };
}

/** The field a guarded write stamps with its own token, so a short matched count can be attributed. */
export const WRITE_TOKEN = '_w';

export type GuardedWrite<T extends Document> =
  /** Creates the document; it must not exist yet. */
  | { index: number; _id: string | number; insert: T }
  /** Updates the document only where `guard` still matches it (the state the plan was decided on). */
  | { index: number; _id: string | number; guard: Filter<T>; update: UpdateFilter<T> };

/**
 * A batch write's steps run one after another (archive, then rows, then documents): once a plan of a key
 * failed, the key's later plans are left out of the steps that follow, and the runner retries the key
 * from that event on. `fail` records a step's failures (and adds them to `all`); `allows` asks.
 */
export class PlanCut {
  private readonly first = new Map<string, number>();
  private readonly keyOf: Map<number, string>;

  constructor(plans: readonly { index: number; event: { key: string } }[]) {
    this.keyOf = new Map(plans.map((p) => [p.index, p.event.key]));
  }

  fail(failures: readonly PlanFailure[], all: PlanFailure[]): void {
    for (const f of failures) {
      const key = this.keyOf.get(f.index)!;
      this.first.set(key, Math.min(this.first.get(key) ?? Infinity, f.index));
      all.push(f);
    }
  }

  allows(p: { index: number; event: { key: string } }): boolean {
    return p.index < (this.first.get(p.event.key) ?? Infinity);
  }
}

/** Plain operations (inserts of fresh ids, idempotent upserts), each tagged with its plan index. */
export interface TaggedOp<T extends Document> {
  index: number;
  op: AnyBulkWriteOperation<T>;
  /** A duplicate _id on insert means the effect is already there (an archive, a provenance row). */
  duplicateIsDone?: boolean;
}

/** A failed operation as the driver reports it: its WriteError keeps code and errmsg behind getters. */
interface OperationFailure {
  index: number;
  code?: number;
  errmsg?: string;
}

/**
 * One failed operation of a bulk write, carrying the server's code. The driver's WriteError holds its
 * fields behind getters, so copying its own properties onto an Error (as this file once did) kept none
 * of them: a duplicate key or a write conflict then read as a handler bug and was dead-lettered.
 */
export class MongoOperationError extends Error {
  override readonly name = 'MongoOperationError';
  readonly code: number | undefined;
  readonly index: number;

  constructor(we: OperationFailure) {
    super(we.errmsg ?? `bulk write operation ${we.index} failed with code ${String(we.code)}`);
    this.code = we.code;
    this.index = we.index;
  }
}

/**
 * The error of one failed operation, routed on the server's code: transient codes retry (classify), a
 * duplicate key means another writer inserted the same _id since this batch read it, so the event is
 * read again (retriable) and decided on what that writer left — a duplicate, or EVENT_ID_REUSED.
 */
export function operationError(we: OperationFailure, collection: string): KeyflowError {
  const cause = new MongoOperationError(we);
  if (isDuplicateKey(we)) {
    return new KeyflowError(
      'HANDLER_TRANSIENT',
      `${collection}: another writer inserted the same _id since the read (${cause.message}); reading again`,
      { retriable: true, cause, details: { mongoCode: we.code } },
    );
  }
  return classify(cause);
}

interface BulkWriteFailure {
  writeErrors?: OperationFailure[] | OperationFailure;
  result?: { getWriteConcernError?: () => unknown };
}

/**
 * The failed operations of a bulk write the server carried out, or undefined when nothing is known
 * written. The driver wraps a failure of a whole command (the connection lost mid-write, a timeout, a
 * write-concern error) in a MongoBulkWriteError too, with an empty list of write errors: read as "these
 * operations failed", that list said every operation succeeded, and the fault suite's kill of the
 * MongoDB server found whole batches of inserts acknowledged to the runner that never reached the server.
 */
export function writeErrorsOf(err: unknown): OperationFailure[] | undefined {
  const e = err as BulkWriteFailure & { name?: string };
  if (e?.name !== 'MongoBulkWriteError' || e.writeErrors === undefined) return undefined;
  const list = Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors];
  if (list.length === 0) return undefined;
  if (typeof e.result?.getWriteConcernError === 'function' && e.result.getWriteConcernError()) {
    return undefined;
  }
  return list;
}

/**
 * Runs tagged operations as one unordered bulkWrite. A failure that is not about single operations
 * (the server unreachable) is thrown: then none of them is known to be written.
 */
export async function writeTagged<T extends Document>(
  collection: Collection<T>,
  ops: readonly TaggedOp<T>[],
): Promise<PlanFailure[]> {
  if (ops.length === 0) return [];
  try {
    await collection.bulkWrite(
      ops.map((o) => o.op),
      { ordered: false },
    );
    return [];
  } catch (err) {
    const writeErrors = writeErrorsOf(err);
    if (!writeErrors) throw classify(err);
    const failures: PlanFailure[] = [];
    for (const we of writeErrors) {
      const tagged = ops[we.index]!;
      if (tagged.duplicateIsDone && isDuplicateKey(we)) continue;
      failures.push({ index: tagged.index, error: operationError(we, collection.collectionName) });
    }
    return failures;
  }
}

/**
 * Runs guarded inserts and updates as one unordered bulkWrite. bulkWrite reports only a total matched
 * count, so when it falls short each update stamps a token of its own and the documents are read back
 * by _id: an update whose token is not there lost to another writer and its plan fails as a
 * concurrent update (retried from read()). The read-back happens only on a conflict.
 */
export async function writeGuarded<T extends Document>(
  collection: Collection<T>,
  writes: readonly GuardedWrite<T>[],
  what: string,
): Promise<PlanFailure[]> {
  if (writes.length === 0) return [];
  const batch = randomUUID().slice(0, 8);
  const tokens = writes.map((_, i) => `${batch}.${i}`);
  const ops = writes.map((w, i): AnyBulkWriteOperation<T> => {
    if ('insert' in w) {
      return { insertOne: { document: { ...w.insert, [WRITE_TOKEN]: tokens[i] } as never } };
    }
    const update = { ...w.update } as Record<string, Document>;
    update.$set = { ...(update.$set ?? {}), [WRITE_TOKEN]: tokens[i] };
    return { updateOne: { filter: { ...w.guard, _id: w._id } as Filter<T>, update: update as never } };
  });
  const failures = new Map<number, PlanFailure>();
  let matched: number | undefined;
  try {
    const res = await collection.bulkWrite(ops, { ordered: false });
    matched = res.matchedCount;
  } catch (err) {
    const writeErrors = writeErrorsOf(err);
    if (!writeErrors) throw classify(err);
    for (const we of writeErrors) {
      const w = writes[we.index]!;
      const error = isDuplicateKey(we)
        ? concurrentUpdate(what, String(w._id))
        : operationError(we, collection.collectionName);
      failures.set(we.index, { index: w.index, error });
    }
  }
  const updates = writes.map((w, i) => ({ w, i })).filter(({ w }) => !('insert' in w));
  const unfailed = updates.filter(({ i }) => !failures.has(i));
  if (unfailed.length > 0 && matched !== unfailed.length) {
    const docs = await collection
      .find({ _id: { $in: unfailed.map(({ w }) => w._id) } } as Filter<T>, {
        projection: { [WRITE_TOKEN]: 1 },
      })
      .toArray();
    const stamped = new Set(docs.map((d) => (d as Document)[WRITE_TOKEN] as string));
    for (const { w, i } of unfailed) {
      if (!stamped.has(tokens[i]!)) {
        failures.set(i, { index: w.index, error: concurrentUpdate(what, String(w._id)) });
      }
    }
  }
  return [...failures.values()];
}

/** Documents by _id, in one query; the map is keyed by the _id as text. */
export async function byIds<T extends Document>(
  collection: Collection<T>,
  ids: Iterable<string | number>,
): Promise<Map<string, T>> {
  const list = [...new Set(ids)];
  const out = new Map<string, T>();
  if (list.length === 0) return out;
  const docs = await collection.find({ _id: { $in: list } } as Filter<T>).toArray();
  for (const d of docs) out.set(String((d as Document)._id), d as T);
  return out;
}
