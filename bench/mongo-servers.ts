// Compares the three local MongoDB-protocol servers (FerretDB/SQLite, mongo-java-server/H2, SecantusDB/WiredTiger)
// on the operations Keyflow's state store performs: throughput per workload, correctness checks, and gaps
// versus MongoDB 7.
// Run: npx tsx bench/mongo-servers.ts   (KEYFLOW_CACHE_DIR overrides the build cache, default ~/.cache/keyflow)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  Long,
  MongoClient,
  type AnyBulkWriteOperation,
  type Collection,
  type Document,
  type ObjectId,
  type UpdateFilter,
} from 'mongodb';
import { DEFAULT_KAFKA_VERSION } from '../src/config/schema';
import {
  FERRETDB_VERSION,
  MONGO_JAVA_SERVER_VERSION,
  SECANTUSDB_VERSION,
  mongo,
} from '../src/services/mongo';
import { isAlive, logFile, portOpen, tail } from '../src/services/process';
import type { MongoServerKind, StackContext } from '../src/services/types';

const SERVERS: { kind: MongoServerKind; port: number; label: string }[] = [
  { kind: 'ferretdb', port: 37017, label: `FerretDB ${FERRETDB_VERSION} (SQLite)` },
  {
    kind: 'mongo-java-server',
    port: 37018,
    label: `mongo-java-server ${MONGO_JAVA_SERVER_VERSION} (H2 MVStore)`,
  },
  { kind: 'secantusdb', port: 37019, label: `SecantusDB ${SECANTUSDB_VERSION} (WiredTiger)` },
];

const BULK_OPS = 20_000;
// FerretDB 1.24.2 deadlocks on a single update command that modifies about 100 existing documents (each
// matched update keeps a SQLite pool connection until the command ends; 99 passed, 100 and 101 hung), so
// the comparable run uses batches of 50 and the batch of 500 runs last, when a hang no longer hurts the rest.
const SAFE_BATCH = 50;
const LARGE_BATCH = 500;
const BULK_KEYS = 2_000;
const FIND_AND_MODIFY_OPS = 2_000;
const POINT_READS = 2_000;
const AGG_RUNS = 20;
const RACE_OPS_PER_CLIENT = 2_000;
const RACE_IN_FLIGHT = 8; // per client: enough overlap to expose read-modify-write races
const READY_TIMEOUT_MS = 60_000;
// The batched hot path (STYLE.md, "The hot path and the store"): per batch one $in read of its ids and one
// unordered bulkWrite of upserts by _id. Two clients, as two partitions, over overlapping keys.
const HOT_KEYS = 2_000;
const HOT_IN_READ = 500;
const HOT_CLIENTS = 2;
const HOT_OPS_PER_CLIENT = 5_000;
const HOT_GUARDED_OPS_PER_CLIENT = 1_000;

/** Keyflow keys its state documents by string _ids; inserts without _id get an ObjectId. */
interface KDoc extends Document {
  _id?: string | ObjectId;
}

interface RaceDoc {
  _id: string;
  n?: number;
  applied?: string[];
}

type Results = Map<string, Map<MongoServerKind, string>>;
const throughput: Results = new Map();
const checks: Results = new Map();
const record = (table: Results, metric: string, kind: MongoServerKind, value: string) => {
  if (!table.has(metric)) table.set(metric, new Map());
  table.get(metric)!.set(kind, value);
};

function errText(err: unknown): string {
  const e = err as { code?: unknown; codeName?: unknown; message?: unknown };
  const code =
    e.code === undefined ? '' : `code ${String(e.code)}${e.codeName ? ` ${String(e.codeName)}` : ''}: `;
  return `${code}${String(e.message ?? err)}`.replace(/\s+/g, ' ').slice(0, 180);
}

const rate = (ops: number, ms: number) => `${Math.round((ops * 1000) / ms).toLocaleString('en-US')} ops/s`;

/** Runs `total` async tasks with at most `inFlight` outstanding, like a consumer with a bounded window. */
async function pool(total: number, inFlight: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, worker));
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

// ---- workloads -------------------------------------------------------------------------------------------

/** Deterministic values that differ between the ops of one key, so $min/$max are checkable. */
const opValue = (i: number) => (i * 37) % 1009;

async function bulkUpserts(kind: MongoServerKind, coll: Collection<KDoc>, batch: number): Promise<void> {
  const ops: AnyBulkWriteOperation<KDoc>[] = [];
  for (let i = 0; i < BULK_OPS; i++) {
    const value = opValue(i);
    ops.push({
      updateOne: {
        filter: { _id: `k${i % BULK_KEYS}` },
        update: {
          $inc: { count: 1, sum: value },
          $min: { min: value },
          $max: { max: value },
          $setOnInsert: { bucket: (i % BULK_KEYS) % 10, createdAt: new Date(0) },
        },
        upsert: true,
      },
    });
  }
  let upserted = 0;
  let modified = 0;
  const { ms } = await timed(async () => {
    for (let i = 0; i < ops.length; i += batch) {
      const res = await coll.bulkWrite(ops.slice(i, i + batch), { ordered: false });
      upserted += res.upsertedCount;
      modified += res.modifiedCount;
    }
  });
  record(
    throughput,
    `bulkWrite upserts ($inc/$min/$max/$setOnInsert), ${BULK_OPS} ops in batches of ${batch}`,
    kind,
    rate(BULK_OPS, ms),
  );

  const [agg] = await coll
    .aggregate<{ docs: number; count: number; sum: number }>([
      { $group: { _id: null, docs: { $sum: 1 }, count: { $sum: '$count' }, sum: { $sum: '$sum' } } },
    ])
    .toArray();
  let expectedSum = 0;
  for (let i = 0; i < BULK_OPS; i++) expectedSum += opValue(i);
  const k7 = await coll.findOne({ _id: 'k7' });
  const k7values = Array.from({ length: BULK_OPS / BULK_KEYS }, (_, j) => opValue(7 + j * BULK_KEYS));
  const ok =
    agg?.docs === BULK_KEYS &&
    agg.count === BULK_OPS &&
    agg.sum === expectedSum &&
    k7?.min === Math.min(...k7values) &&
    k7?.max === Math.max(...k7values) &&
    upserted === BULK_KEYS &&
    modified === BULK_OPS - BULK_KEYS;
  record(
    checks,
    `bulk upsert results, batches of ${batch} (docs, $inc totals, $min/$max, upserted/modified counts)`,
    kind,
    ok ? 'correct' : `WRONG: ${JSON.stringify({ agg, min: k7?.min, max: k7?.max, upserted, modified })}`,
  );
}

async function findOneAndUpdates(kind: MongoServerKind, coll: Collection<KDoc>): Promise<void> {
  let wrong = 0;
  const { ms } = await timed(async () => {
    for (let i = 0; i < FIND_AND_MODIFY_OPS; i++) {
      const doc = await coll.findOneAndUpdate(
        { _id: `f${i % 100}` },
        { $inc: { seq: 1 }, $setOnInsert: { created: true } },
        { upsert: true, returnDocument: 'after' },
      );
      if (doc?.seq !== Math.floor(i / 100) + 1) wrong++;
    }
  });
  record(
    throughput,
    `findOneAndUpdate upsert (returnDocument after), ${FIND_AND_MODIFY_OPS} sequential`,
    kind,
    rate(FIND_AND_MODIFY_OPS, ms),
  );
  record(
    checks,
    'findOneAndUpdate upsert returns the post-image',
    kind,
    wrong === 0 ? 'correct' : `WRONG in ${wrong} calls`,
  );
}

async function pointReads(kind: MongoServerKind, coll: Collection<KDoc>): Promise<void> {
  const { ms } = await timed(async () => {
    for (let i = 0; i < POINT_READS; i++) await coll.findOne({ _id: `k${i % BULK_KEYS}` });
  });
  record(throughput, `findOne by _id, ${POINT_READS} sequential`, kind, rate(POINT_READS, ms));
}

async function groupAggregation(kind: MongoServerKind, coll: Collection<KDoc>): Promise<void> {
  let groups: Document[] = [];
  const { ms } = await timed(async () => {
    for (let i = 0; i < AGG_RUNS; i++) {
      groups = await coll
        .aggregate([{ $group: { _id: '$bucket', n: { $sum: '$count' } } }, { $sort: { _id: 1 } }])
        .toArray();
    }
  });
  record(
    throughput,
    `$group aggregation over ${BULK_KEYS} docs (10 groups), ${AGG_RUNS} runs`,
    kind,
    rate(AGG_RUNS, ms),
  );
  const ok = groups.length === 10 && groups.every((g) => g.n === BULK_OPS / 10);
  record(
    checks,
    '$group + $sort result',
    kind,
    ok ? 'correct' : `WRONG: ${JSON.stringify(groups).slice(0, 120)}`,
  );
}

async function uniqueIndex(kind: MongoServerKind, coll: Collection<KDoc>): Promise<void> {
  await coll.createIndex({ ref: 1 }, { unique: true });
  await coll.insertOne({ ref: 'dup' });
  try {
    await coll.insertOne({ ref: 'dup' });
    record(checks, 'unique index: duplicate insertOne', kind, 'WRONG: duplicate accepted');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    record(
      checks,
      'unique index: duplicate insertOne',
      kind,
      code === 11000 ? 'rejected, code 11000' : `WRONG code: ${errText(err)}`,
    );
  }
  try {
    await coll.bulkWrite(
      [{ insertOne: { document: { ref: 'dup' } } }, { insertOne: { document: { ref: 'fresh' } } }],
      {
        ordered: false,
      },
    );
    record(checks, 'unique index: duplicate inside unordered bulkWrite', kind, 'WRONG: duplicate accepted');
  } catch (err) {
    const e = err as {
      writeErrors?: { code?: number }[] | { code?: number };
      result?: { insertedCount?: number };
    };
    const writeErrors = Array.isArray(e.writeErrors) ? e.writeErrors : e.writeErrors ? [e.writeErrors] : [];
    const inserted = `${String(e.result?.insertedCount)} reported, ${await coll.countDocuments({ ref: 'dup' })} docs with the duplicate key`;
    const ok = writeErrors.length === 1 && writeErrors[0]?.code === 11000 && e.result?.insertedCount === 1;
    record(
      checks,
      'unique index: duplicate inside unordered bulkWrite',
      kind,
      ok
        ? 'writeErrors[0].code 11000, other op applied'
        : `WRONG: ${errText(err)} (inserted ${String(inserted)})`,
    );
  }
}

async function explainPlans(coll: Collection<KDoc>): Promise<string> {
  await coll.createIndex({ bucket: 1 });
  const stages = async (filter: Document) => {
    const plan = JSON.stringify(await coll.find(filter).explain());
    const found = ['IXSCAN', 'COLLSCAN', 'IDHACK', 'EXPRESS_IXSCAN'].filter((s) => plan.includes(`"${s}"`));
    const pushdown = /"pushdown":(true|false)/.exec(plan)?.[0];
    return found.length > 0 ? found.join('+') : `no stage names (${pushdown ?? plan.slice(0, 80)})`;
  };
  const indexed = await stages({ bucket: 3 });
  const unindexed = await stages({ count: 10 });
  return `${indexed} / ${unindexed}`;
}

/** Two independent clients hammering one document; any shortfall in the final count is a lost update. */
async function lostUpdates(kind: MongoServerKind, url: string, dbName: string): Promise<void> {
  const clients = [new MongoClient(url), new MongoClient(url)];
  try {
    const colls = clients.map((c) => c.db(dbName).collection<RaceDoc>('race'));
    const total = 2 * RACE_OPS_PER_CLIENT;

    // Plain $inc upsert.
    const plain = await timed(() =>
      Promise.all(
        colls.map((coll) =>
          pool(RACE_OPS_PER_CLIENT, RACE_IN_FLIGHT, async () => {
            await retryDupKey(() => coll.updateOne({ _id: 'plain' }, { $inc: { n: 1 } }, { upsert: true }));
          }),
        ),
      ),
    );
    const plainDoc = await colls[0]!.findOne({ _id: 'plain' });
    record(
      throughput,
      `concurrent $inc upsert on one _id, 2 clients x ${RACE_OPS_PER_CLIENT}`,
      kind,
      rate(total, plain.ms),
    );
    record(checks, `lost updates: plain $inc (expect ${total})`, kind, verdict(plainDoc?.n, total));

    // Idempotent form: the filter skips events already applied, the update records the event id.
    // The bounded $push/$slice variant is what src/state/guard.ts (applyOnce) sends.
    const variants: { name: string; record: (eventId: string) => Document; window?: number }[] = [
      { name: '$push', record: (eventId) => ({ $push: { applied: eventId } }) },
      { name: '$addToSet', record: (eventId) => ({ $addToSet: { applied: eventId } }) },
      {
        name: '$push $each/$slice -64',
        record: (eventId) => ({ $push: { applied: { $each: [eventId], $slice: -64 } } }),
        window: 64,
      },
    ];
    for (const variant of variants) {
      const id = `guard-${variant.name}`;
      const guarded = await timed(() =>
        Promise.all(
          colls.map((coll, c) =>
            pool(RACE_OPS_PER_CLIENT, RACE_IN_FLIGHT, async (i) => {
              const eventId = `c${c}-e${i}`;
              const update = { $inc: { n: 1 }, ...variant.record(eventId) } as UpdateFilter<RaceDoc>;
              await retryDupKey(() =>
                coll.updateOne({ _id: id, applied: { $ne: eventId } }, update, { upsert: true }),
              );
            }),
          ),
        ),
      );
      const doc = await colls[0]!.findOne({ _id: id });
      const applied = doc?.applied ?? [];
      const distinct = new Set(applied).size;
      const expectedLen = variant.window ?? doc?.n;
      const arrays =
        distinct === applied.length && applied.length === expectedLen
          ? ''
          : `, applied list ${applied.length} (${distinct} distinct)`;
      record(
        throughput,
        `concurrent guarded upsert ($ne + ${variant.name}), 2 clients x ${RACE_OPS_PER_CLIENT}`,
        kind,
        rate(total, guarded.ms),
      );
      record(
        checks,
        `lost updates: guarded ${variant.name} (expect ${total})`,
        kind,
        verdict(doc?.n, total) + arrays,
      );
    }

    // Redelivery of an already-applied event must not count twice; MongoDB answers the upsert with E11000.
    try {
      const res = await colls[0]!.updateOne(
        { _id: 'guard-$push', applied: { $ne: 'c0-e5' } },
        { $inc: { n: 1 }, $push: { applied: 'c0-e5' } },
        { upsert: true },
      );
      record(
        checks,
        'redelivered event with guard (expect E11000, no change)',
        kind,
        `WRONG? no error, matched ${res.matchedCount}, upserted ${res.upsertedCount}`,
      );
    } catch (err) {
      const doc = await colls[0]!.findOne({ _id: 'guard-$push' });
      const code = (err as { code?: unknown }).code;
      record(
        checks,
        'redelivered event with guard (expect E11000, no change)',
        kind,
        code === 11000 && doc?.n === total
          ? 'E11000, count unchanged'
          : `WRONG: ${errText(err)}, n=${String(doc?.n)}`,
      );
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

const retries = { dupKey: 0 };
/** A concurrent upsert can lose the insert race with E11000 (MongoDB does too); the caller retries once. */
async function retryDupKey(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if ((err as { code?: unknown }).code !== 11000) throw err;
    retries.dupKey++;
    await fn();
  }
}

function verdict(actual: unknown, expected: number): string {
  const got = Number(actual);
  const note = retries.dupKey > 0 ? ` (${retries.dupKey} E11000 insert races retried)` : '';
  retries.dupKey = 0;
  return got === expected ? `none (${got})${note}` : `LOST ${expected - got} (${String(actual)})${note}`;
}

// ---- the batched hot path -----------------------------------------------------------------------------

interface HotDoc {
  _id: string;
  n?: number;
  max?: number;
  _applied?: string[];
}

/**
 * Rounds of: one `$in` read of HOT_IN_READ ids, then one unordered bulkWrite of `batch` upserts by _id.
 * `guarded` adds the applied-event guard's `_applied: {$ne}` to each filter (src/state/guard.ts).
 * Half of each client's keys overlap the other client's, so a lost update shows in the final sum.
 */
async function batchedHotPath(
  kind: MongoServerKind,
  url: string,
  collName: string,
  batch: number,
  guarded: boolean,
): Promise<void> {
  const perClient = guarded ? HOT_GUARDED_OPS_PER_CLIENT : HOT_OPS_PER_CLIENT;
  const label = `${guarded ? 'guarded ' : ''}bulkWrite upserts by _id in batches of ${batch} + $in reads of ${HOT_IN_READ} ids, ${HOT_CLIENTS} clients x ${perClient}`;
  const clients = Array.from(
    { length: HOT_CLIENTS },
    () => new MongoClient(url, { socketTimeoutMS: 30_000, serverSelectionTimeoutMS: 10_000 }),
  );
  try {
    const colls = clients.map((c) => c.db('kfbench').collection<HotDoc>(collName));
    // The keys exist up front, as in a running system: the timed part updates, it does not insert.
    const seed = Array.from({ length: HOT_KEYS }, (_, i) => ({ _id: `h${i}`, n: 0, max: 0 }));
    for (let i = 0; i < seed.length; i += 50) await colls[0]!.insertMany(seed.slice(i, i + 50));
    const key = (c: number, op: number) => `h${(op + c * (batch / 2)) % HOT_KEYS}`;
    let readMs = 0;
    let readDocs = 0;
    let writeMs = 0;
    const run = await timed(() =>
      Promise.all(
        colls.map(async (coll, c) => {
          for (let start = 0; start < perClient; start += batch) {
            const ids: string[] = [];
            for (let op = start; op < start + batch; op++) ids.push(key(c, op));
            const read = await timed(() => coll.find({ _id: { $in: ids.slice(0, HOT_IN_READ) } }).toArray());
            readMs += read.ms;
            readDocs += read.value.length;
            const ops: AnyBulkWriteOperation<HotDoc>[] = ids.map((_id, j) => {
              const eventId = `c${c}-e${start + j}`;
              return {
                updateOne: {
                  filter: guarded ? { _id, _applied: { $ne: eventId } } : { _id },
                  update: {
                    $inc: { n: 1 },
                    $max: { max: start + j },
                    ...(guarded ? { $push: { _applied: { $each: [eventId], $slice: -64 } } } : {}),
                  },
                  upsert: true,
                },
              };
            });
            writeMs += (await timed(() => coll.bulkWrite(ops, { ordered: false }))).ms;
          }
        }),
      ),
    );
    const total = HOT_CLIENTS * perClient;
    record(throughput, `${label}: events/s`, kind, rate(total, run.ms));
    record(
      throughput,
      `${label}: bulkWrite alone (ops/s per client)`,
      kind,
      rate(perClient * HOT_CLIENTS, writeMs),
    );
    record(throughput, `${label}: $in reads alone (docs/s per client)`, kind, rate(readDocs, readMs));
    const [sum] = await colls[0]!
      .aggregate<{ n: number; docs: number }>([{ $group: { _id: 1, n: { $sum: '$n' }, docs: { $sum: 1 } } }])
      .toArray();
    const ok =
      sum?.n === total &&
      sum.docs === HOT_KEYS &&
      readDocs === (total / batch) * Math.min(batch, HOT_IN_READ);
    record(
      checks,
      `lost updates: ${label}`,
      kind,
      ok ? `none (${total})` : `WRONG: ${JSON.stringify({ sum, readDocs })}`,
    );
  } catch (err) {
    record(throughput, `${label}: events/s`, kind, `FAILS: ${errText(err)}`);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

// ---- features that differ from MongoDB 7 ---------------------------------------------------------------

async function feature(kind: MongoServerKind, name: string, fn: () => Promise<string>): Promise<void> {
  try {
    record(checks, name, kind, await fn());
  } catch (err) {
    record(checks, name, kind, `fails: ${errText(err)}`);
  }
}

async function features(kind: MongoServerKind, client: MongoClient, coll: Collection<KDoc>): Promise<void> {
  await feature(kind, 'explicit session (find with session)', async () => {
    const session = client.startSession();
    try {
      await coll.findOne({}, { session });
      return 'works';
    } finally {
      await session.endSession();
    }
  });
  await feature(kind, 'transaction: commit', async () => {
    const session = client.startSession();
    try {
      await session.withTransaction(async () => {
        await coll.insertOne({ _id: 'txn-commit' }, { session });
      });
      return (await coll.findOne({ _id: 'txn-commit' })) ? 'committed' : 'WRONG: insert missing';
    } finally {
      await session.endSession();
    }
  });
  await feature(kind, 'transaction: abort discards writes', async () => {
    const session = client.startSession();
    try {
      session.startTransaction();
      await coll.insertOne({ _id: 'txn-abort' }, { session });
      await session.abortTransaction();
      const leaked = await coll.findOne({ _id: 'txn-abort' });
      return leaked ? 'NOT ATOMIC: aborted insert is visible' : 'discarded';
    } finally {
      await session.endSession();
    }
  });
  await feature(kind, 'change stream (watch + insert)', async () => {
    const stream = coll.watch([], { maxAwaitTimeMS: 300 });
    try {
      await stream.tryNext(); // opens the cursor; unsupported servers fail here
      await coll.insertOne({ watched: true });
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        const change = await stream.tryNext();
        if (change) return `works (${change.operationType})`;
      }
      return 'opened but no event within 3 s';
    } finally {
      await stream.close();
    }
  });
  await feature(kind, "writeConcern { w: 'majority' }", async () => {
    await coll.insertOne({ wc: true }, { writeConcern: { w: 'majority', wtimeoutMS: 1000 } });
    return 'accepted';
  });
  await feature(kind, 'Int64 > 2^53 kept exact through $max (Kafka offsets)', async () => {
    const big = Long.fromString('9007199254740993');
    await coll.updateOne({ _id: 'long' }, { $max: { offset: big } }, { upsert: true });
    const doc = await coll.findOne({ _id: 'long' }, { promoteLongs: false });
    const got = doc?.offset as unknown;
    return got instanceof Long && got.equals(big) ? 'exact' : `WRONG: got ${String(got)}`;
  });
  await feature(kind, 'TTL index (expireAfterSeconds) creation', async () => {
    await coll.createIndex({ at: 1 }, { expireAfterSeconds: 3600 });
    return 'accepted';
  });
  await feature(kind, 'partial unique index creation', async () => {
    await coll.createIndex({ key: 1 }, { unique: true, partialFilterExpression: { key: { $exists: true } } });
    return 'accepted';
  });
  await feature(kind, 'update with arrayFilters', async () => {
    await coll.insertOne({
      _id: 'af',
      items: [
        { k: 'a', v: 1 },
        { k: 'b', v: 1 },
      ],
    });
    await coll.updateOne({ _id: 'af' }, { $inc: { 'items.$[x].v': 1 } }, { arrayFilters: [{ 'x.k': 'b' }] });
    const doc = await coll.findOne({ _id: 'af' });
    return (doc?.items as { v: number }[] | undefined)?.[1]?.v === 2
      ? 'works'
      : `WRONG: ${JSON.stringify(doc)}`;
  });
}

// ---- orchestration ---------------------------------------------------------------------------------------

async function waitReady(ctx: StackContext, pid: number): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < READY_TIMEOUT_MS) {
    if (await mongo.ready(ctx)) return performance.now() - start;
    if (!isAlive(pid)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${ctx.mongoServer} did not become ready:\n${tail(logFile(ctx, 'mongo'))}`);
}

async function stop(pid: number): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 40 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 250));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

async function benchServer(kind: MongoServerKind, port: number, cacheDir: string): Promise<void> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `keyflow-bench-${kind}-`));
  const ctx: StackContext = {
    stateDir,
    cacheDir,
    ports: { kafka: 0, kafkaController: 0, registry: 0, mongo: port },
    kafkaVersion: DEFAULT_KAFKA_VERSION, // no Kafka here; the field is only required
    mongoServer: kind,
    progress: (line) => console.error(`  [${kind}] ${line}`),
  };
  const install = await timed(() => mongo.install(ctx));
  record(checks, 'install (build/download) time', kind, `${(install.ms / 1000).toFixed(1)} s`);

  let pid = await mongo.start(ctx);
  try {
    record(checks, 'start until ping answers', kind, `${(await waitReady(ctx, pid)).toFixed(0)} ms`);
    const url = mongo.endpoint(ctx).env.MONGO_URL!;
    const client = new MongoClient(url);
    try {
      const db = client.db('kfbench');
      const info = await db.admin().command({ buildInfo: 1 });
      record(
        checks,
        'reported MongoDB version (buildInfo)',
        kind,
        `${String(info.version)}${info.ferretdbVersion ? ` (FerretDB ${String(info.ferretdbVersion)})` : ''}`,
      );
      console.error(`  [${kind}] running workloads...`);
      const state = db.collection<KDoc>('state');
      await bulkUpserts(kind, state, SAFE_BATCH);
      await findOneAndUpdates(kind, db.collection<KDoc>('fam'));
      await pointReads(kind, state);
      await groupAggregation(kind, state);
      await uniqueIndex(kind, db.collection<KDoc>('uniq'));
      await feature(kind, 'explain(): indexed find / unindexed find', () => explainPlans(state));
      await lostUpdates(kind, url, 'kfbench');
      await features(kind, client, db.collection<KDoc>('features'));
    } finally {
      await client.close();
    }

    // Persistence: a restart on the same state folder must keep the data.
    await stop(pid);
    pid = await mongo.start(ctx);
    await waitReady(ctx, pid);
    const again = new MongoClient(mongo.endpoint(ctx).env.MONGO_URL!);
    try {
      const docs = await again.db('kfbench').collection('state').countDocuments();
      record(
        checks,
        `data kept across SIGTERM restart (expect ${BULK_KEYS} docs)`,
        kind,
        docs === BULK_KEYS ? 'kept' : `WRONG: ${docs} docs`,
      );
    } finally {
      await again.close();
    }

    // Next to last, because on FerretDB a bulk update of 100 existing documents wedges the server.
    for (const [batch, guarded] of [
      [500, false],
      [1000, false],
      [500, true],
    ] as const) {
      await batchedHotPath(
        kind,
        mongo.endpoint(ctx).env.MONGO_URL!,
        `hot${batch}${guarded ? 'g' : ''}`,
        batch,
        guarded,
      );
    }

    // Last, because on FerretDB it wedges the whole server (every connection) until SIGKILL.
    const bounded = new MongoClient(mongo.endpoint(ctx).env.MONGO_URL!, { socketTimeoutMS: 20_000 });
    try {
      await bulkUpserts(kind, bounded.db('kfbench').collection<KDoc>('state500'), LARGE_BATCH);
    } catch (err) {
      const row = `bulkWrite upserts ($inc/$min/$max/$setOnInsert), ${BULK_OPS} ops in batches of ${LARGE_BATCH}`;
      record(throughput, row, kind, `FAILS: ${errText(err)}`);
    } finally {
      await bounded.close();
    }
  } finally {
    await stop(pid);
    const bound = await portOpen(port);
    record(
      checks,
      'process stopped, port released',
      kind,
      !isAlive(pid) && !bound ? 'yes' : `NO (alive ${isAlive(pid)}, port bound ${bound})`,
    );
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

function table(title: string, results: Results): string {
  const head = `| ${title} | ${SERVERS.map((s) => s.label).join(' | ')} |`;
  const sep = `|---|${SERVERS.map(() => '---').join('|')}|`;
  const rows = [...results].map(
    ([metric, values]) =>
      `| ${metric} | ${SERVERS.map((s) => (values.get(s.kind) ?? 'n/a').replace(/\|/g, '\\|')).join(' | ')} |`,
  );
  return [head, sep, ...rows].join('\n');
}

async function main(): Promise<void> {
  const cacheDir = process.env.KEYFLOW_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'keyflow');
  const only = process.env.BENCH_ONLY; // e.g. mongo-java-server, to re-run one server
  for (const { kind, port } of SERVERS.filter((s) => !only || s.kind === only)) {
    console.error(`== ${kind} on 127.0.0.1:${port}`);
    try {
      await benchServer(kind, port, cacheDir);
    } catch (err) {
      record(checks, 'benchmark aborted', kind, errText(err));
      console.error(err);
    }
  }
  console.log(`\nMachine: ${os.cpus().length} cores, Node ${process.version}\n`);
  console.log(table('Throughput', throughput));
  console.log();
  console.log(table('Correctness and features', checks));
}

// The driver's own timers are unref'd: if a server stops answering mid-await, Node could drain its event
// loop and exit silently with the servers still running. Keep it alive until main settles.
const keepAlive = setInterval(() => undefined, 60_000);
main().finally(() => clearInterval(keepAlive));
