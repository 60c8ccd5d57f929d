// A small in-memory stand-in for the MongoDB calls the batches fold makes (find by filter, unordered
// bulkWrite of guarded updates and inserts), so a crash between two of its writes can be placed exactly:
// `failNext` makes one collection's next bulkWrite throw as a lost connection would.
import type { Db } from 'mongodb';

type Doc = Record<string, unknown>;

const same = (a: unknown, b: unknown): boolean => {
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  }
  if (a === undefined || a === null) return b === undefined || b === null;
  return JSON.stringify(a) === JSON.stringify(b);
};

function matches(doc: Doc, filter: Doc): boolean {
  return Object.entries(filter).every(([field, want]) => {
    const have = doc[field];
    if (want !== null && typeof want === 'object' && !(want instanceof Date)) {
      const ops = want as Doc;
      if ('$in' in ops) return (ops.$in as unknown[]).some((v) => same(have, v));
      if ('$ne' in ops) return !same(have, ops.$ne);
      throw new Error(`fake mongo: unsupported filter ${JSON.stringify(want)}`);
    }
    return same(have, want);
  });
}

function apply(doc: Doc, update: Doc): void {
  for (const [op, fields] of Object.entries(update)) {
    for (const [field, value] of Object.entries(fields as Doc)) {
      if (op === '$set') doc[field] = value;
      else if (op === '$setOnInsert') continue;
      else if (op === '$inc') doc[field] = ((doc[field] as number | undefined) ?? 0) + (value as number);
      else if (op === '$max') {
        const have = doc[field] as Date | number | null | undefined;
        if (have === undefined || have === null || (value as Date | number) > have) doc[field] = value;
      } else if (op === '$addToSet') {
        const list = ((doc[field] as unknown[] | undefined) ?? []).slice();
        const add = (value as Doc | null)?.$each ? ((value as Doc).$each as unknown[]) : [value];
        for (const v of add) if (!list.some((x) => same(x, v))) list.push(v);
        doc[field] = list;
      } else if (op === '$pull') {
        const out = (value as Doc).$in as unknown[];
        doc[field] = ((doc[field] as unknown[] | undefined) ?? []).filter(
          (x) => !out.some((v) => same(x, v)),
        );
      } else throw new Error(`fake mongo: unsupported update ${op}`);
    }
  }
}

export class FakeCollection {
  readonly docs = new Map<string, Doc>();
  private failures: Error[] = [];

  constructor(readonly name: string) {}

  private before: (() => void) | undefined;

  failNext(error: Error): void {
    this.failures.push(error);
  }

  /** Runs `fn` just before the next bulkWrite: another writer getting in first. */
  beforeNext(fn: () => void): void {
    this.before = fn;
  }

  find(filter: Doc, options: { projection?: Doc } = {}) {
    const found = [...this.docs.values()].filter((d) => matches(d, filter)).map((d) => structuredClone(d));
    const projected = options.projection
      ? found.map((d) => ({
          _id: d._id,
          ...Object.fromEntries(Object.keys(options.projection!).map((k) => [k, d[k]])),
        }))
      : found;
    return { toArray: async () => projected };
  }

  async findOne(filter: Doc): Promise<Doc | null> {
    return (await this.find(filter).toArray())[0] ?? null;
  }

  async bulkWrite(ops: Doc[]): Promise<{ matchedCount: number }> {
    const failure = this.failures.shift();
    if (failure) throw failure;
    const before = this.before;
    this.before = undefined;
    before?.();
    let matchedCount = 0;
    const writeErrors: { index: number; code: number; errmsg: string }[] = [];
    ops.forEach((op, index) => {
      if (op.insertOne) {
        const doc = structuredClone((op.insertOne as { document: Doc }).document);
        const id = String(doc._id);
        if (this.docs.has(id)) writeErrors.push({ index, code: 11000, errmsg: `E11000 duplicate ${id}` });
        else this.docs.set(id, doc);
        return;
      }
      const { filter, update } = op.updateOne as { filter: Doc; update: Doc };
      const doc = [...this.docs.values()].find((d) => matches(d, filter));
      if (!doc) return;
      matchedCount++;
      apply(doc, update);
    });
    if (writeErrors.length > 0) {
      throw Object.assign(new Error('bulk write failed'), {
        name: 'MongoBulkWriteError',
        writeErrors,
        result: { getWriteConcernError: () => undefined },
      });
    }
    return { matchedCount };
  }

  insert(doc: Doc): void {
    this.docs.set(String(doc._id), structuredClone(doc));
  }
}

export class FakeDb {
  private readonly collections = new Map<string, FakeCollection>();

  collection(name: string): FakeCollection {
    let c = this.collections.get(name);
    if (!c) this.collections.set(name, (c = new FakeCollection(name)));
    return c;
  }

  /** As the stage's handler takes it. */
  get db(): Db {
    return this as unknown as Db;
  }
}
