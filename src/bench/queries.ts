// `keyflow bench queries`: every declared query (the engine's and each dataflow's) run against its
// collection holding 1,000 unrelated rows and again holding 1,000,000, with the ratio of the two times
// per query. A query whose cost does not grow with unrelated rows stays near 1 on every server; one the
// server answers by a scan grows with the table. Rows are "unrelated" by type: each field holds a value
// of another BSON type than the query's sample value, so no operator of the filter can match them,
// while a document built from the filter's equalities is there to be found.
// Sizes: BENCH_QUERY_ROWS (default 1000,1000000); collections: BENCH_QUERY_ONLY (comma list).
import fs from 'node:fs';
import path from 'node:path';
import type { Db, Document } from 'mongodb';
import { appDataflows } from '../app/dataflows';
import type { DeclaredQuery } from '../runtime/dataflow';
import { ENGINE_INDEXES, ENGINE_QUERIES } from '../runtime/engine-queries';
import { ensureIndexes, type CollectionIndexes } from '../state/mongo';

export interface QueryFigure {
  collection: string;
  query: string;
  /** Median time of the query per size (ms), in the order of `sizes`. */
  ms: number[];
  /** Runs per size the median is taken over: 9, or 3 for a query that takes seconds. */
  runs: number;
  /** Largest over smallest. */
  ratio: number;
}

export interface QueriesResult {
  server: string;
  startedAt: string;
  /** Absent in a run recorded before the field. */
  durationMs?: number;
  sizes: number[];
  /** Seconds each preload took, per collection and size. */
  preloadSeconds: Record<string, number[]>;
  figures: QueryFigure[];
}

const REPEAT = 9;
/** A query that scans a large collection takes seconds a run: after this much time on it, three runs do. */
const SLOW_QUERY_BUDGET_MS = 3_000;
const MIN_REPEAT = 3;
// Small enough that one insert never holds mongo-java-server long enough to time out the driver's monitor.
const INSERT_BATCH = 2_000;

/** Sets a dotted path in a plain object. */
function setPath(doc: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let at = doc;
  for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>;
  at[parts[parts.length - 1]!] = value;
}

/** A sample value of a field in the collection's queries: what its unrelated value must differ from. */
function sampleOf(v: unknown): unknown {
  if (v && typeof v === 'object' && !(v instanceof Date) && !Array.isArray(v)) {
    const first = Object.values(v as Record<string, unknown>)[0];
    return Array.isArray(first) ? first[0] : first;
  }
  return v;
}

/** A value no filter on this field can match: a string where queries use anything else, else a number. */
function unrelated(sample: unknown, i: number): unknown {
  return typeof sample === 'string' ? 1e12 + i : `u${i}`;
}

/** The collection's fields (queried or indexed) with a sample of each. */
function fieldsOf(queries: DeclaredQuery[], indexes: CollectionIndexes[]): Map<string, unknown> {
  const fields = new Map<string, unknown>();
  for (const q of queries) {
    for (const [f, v] of Object.entries(q.filter)) if (f !== '_id') fields.set(f, sampleOf(v));
    for (const f of Object.keys(q.sort ?? {})) if (!fields.has(f) && f !== '_id') fields.set(f, 0);
  }
  for (const i of indexes) {
    for (const x of i.indexes)
      for (const f of Object.keys(x.key)) if (!fields.has(f) && f !== '_id') fields.set(f, 0);
  }
  return fields;
}

/** The document a query finds: its equalities (and the first of an `$in`), else nothing of its own. */
function probeOf(q: DeclaredQuery, n: number): Document | null {
  const doc: Record<string, unknown> = {};
  for (const [f, v] of Object.entries(q.filter)) {
    if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
      const inList = (v as { $in?: unknown[] }).$in;
      if (!inList) return null;
      setPath(doc, f, inList[0]);
    } else setPath(doc, f, v);
  }
  if (doc._id === undefined) doc._id = `probe-${n}`;
  return doc;
}

async function preload(db: Db, collection: string, fields: Map<string, unknown>, from: number, to: number) {
  const coll = db.collection(collection);
  for (let start = from; start < to; start += INSERT_BATCH) {
    const docs: Document[] = [];
    for (let i = start; i < Math.min(to, start + INSERT_BATCH); i++) {
      const d: Record<string, unknown> = { _id: `zz-unrelated-${String(i).padStart(8, '0')}` };
      for (const [f, sample] of fields) setPath(d, f, unrelated(sample, i));
      docs.push(d);
    }
    await coll.insertMany(docs, { ordered: false });
  }
}

async function timeOnce(db: Db, q: DeclaredQuery): Promise<number> {
  const t = process.hrtime.bigint();
  await db
    .collection(q.collection)
    .find(q.filter)
    .sort(q.sort ?? {})
    .limit(50)
    .toArray();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/**
 * Each size gets a database of its own holding the same collection, indexes and probes; the sizes' times
 * are taken interleaved (one run on each, in turn), so a slow spell of the shared machine falls on all.
 */
/** Every declared query: the engine's and each dataflow's. */
function allQueries(): DeclaredQuery[] {
  return [...ENGINE_QUERIES, ...appDataflows().flatMap((f) => f.queries)];
}

export async function runQueriesBench(
  dbs: Db[],
  opts: { server: string; out: (line: string) => void; sizes: number[]; only?: string[] },
): Promise<QueriesResult> {
  const flows = appDataflows();
  const indexes = [...ENGINE_INDEXES, ...flows.flatMap((f) => f.indexes)];
  const queries = allQueries();
  const { sizes } = opts;
  const collections = [...new Set(queries.map((q) => q.collection))].filter(
    (c) => !opts.only?.length || opts.only.includes(c),
  );
  const started = Date.now();
  const result: QueriesResult = {
    server: opts.server,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    sizes,
    preloadSeconds: {},
    figures: [],
  };
  for (const collection of collections) {
    const own = queries.filter((q) => q.collection === collection);
    const ownIndexes = indexes.filter((i) => i.collection === collection);
    const fields = fieldsOf(own, ownIndexes);
    const probes = own.map((q, n) => probeOf(q, n)).filter((d): d is Document => d !== null);
    const preloadSeconds: number[] = [];
    for (const [i, db] of dbs.entries()) {
      await db
        .collection(collection)
        .drop()
        .catch(() => undefined);
      await ensureIndexes(db, ownIndexes);
      for (const p of probes) {
        await db
          .collection(collection)
          .updateOne({ _id: p._id }, { $set: p }, { upsert: true })
          .catch(() => undefined);
      }
      const t = Date.now();
      await preload(db, collection, fields, 0, sizes[i]!);
      preloadSeconds.push((Date.now() - t) / 1000);
      opts.out(
        `  ${collection}: ${sizes[i]!.toLocaleString('en')} rows (preload ${preloadSeconds.at(-1)!.toFixed(1)} s)`,
      );
    }
    result.preloadSeconds[collection] = preloadSeconds;
    for (const q of own) {
      const runs: number[][] = dbs.map(() => []);
      const started = Date.now();
      for (let r = 0; r < REPEAT; r++) {
        if (r >= MIN_REPEAT && Date.now() - started > SLOW_QUERY_BUDGET_MS) break;
        for (const [i, db] of dbs.entries()) runs[i]!.push(await timeOnce(db, q));
      }
      const ms = runs.map((list) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)]!);
      const ratio = ms[ms.length - 1]! / Math.max(ms[0]!, 0.05);
      result.figures.push({
        collection,
        query: q.name,
        ms,
        runs: runs[0]!.length,
        ratio: Math.round(ratio * 100) / 100,
      });
      opts.out(
        `    ${q.name}: ${ms.map((m) => `${m.toFixed(2)} ms`).join(' → ')}  ratio ${ratio.toFixed(2)}`,
      );
    }
    for (const db of dbs)
      await db
        .collection(collection)
        .drop()
        .catch(() => undefined);
  }
  result.durationMs = Date.now() - started;
  return result;
}

export function queriesMarkdown(r: QueriesResult): string {
  const lines = [
    `# Declared queries: cost against unrelated rows (${r.server})`,
    '',
    `| collection | query | ${r.sizes.map((s) => `${s.toLocaleString('en')} rows (ms)`).join(' | ')} | runs | ratio |`,
    `|---|---|${r.sizes.map(() => '---:').join('|')}|---:|---:|`,
    ...r.figures.map(
      (f) =>
        `| ${f.collection} | ${f.query} | ${f.ms.map((m) => m.toFixed(2)).join(' | ')} | ${f.runs} | ${f.ratio > 2 ? `**${f.ratio}**` : f.ratio} |`,
    ),
    '',
    `Preload (s): ${Object.entries(r.preloadSeconds)
      .map(([c, s]) => `${c} ${s.map((x) => x.toFixed(1)).join('/')}`)
      .join('; ')}`,
    '',
  ];
  return lines.join('\n');
}

export function writeQueriesResult(dir: string, r: QueriesResult): string {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(dir, `queries-${stamp}.md`);
  fs.writeFileSync(file, queriesMarkdown(r));
  fs.writeFileSync(path.join(dir, `queries-${stamp}.json`), `${JSON.stringify(r, null, 2)}\n`);
  // A run of every collection at the default sizes is what `keyflow figures` renders into the docs.
  if (r.sizes.join(',') === '1000,1000000' && r.figures.length === allQueries().length) {
    fs.writeFileSync(path.join(dir, 'queries-latest.json'), `${JSON.stringify(r, null, 2)}\n`);
  }
  return file;
}
