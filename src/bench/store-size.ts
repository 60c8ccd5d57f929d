// The embedded store's size and restart time after a long history: starts a private mongo-java-server
// (own port, own data folder; the shared stack is never touched), writes the growth preload, then churns
// it the way the live stages do (small unordered bulks that insert, overwrite and delete), and reports
// the data file's size against the BSON size of the documents in it, and how long a stop and a start
// take. Run: npx tsx src/bench/store-size.ts [--docs 1000000] [--churn 2000] [--keep]
// Measured on a busy 2-core machine (2026-12-07, defaults): 1,500,001 documents, BSON 631.1 MB, file
// 378.8 MB (0.60x, target <= 3), stop 8.6 s, start 1.1 s (target <= 15 s). The launcher before compaction
// and compression, on 20,000 + 100 bulks: file 5.69x the BSON size (now 1.89x).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BSON, MongoClient, type AnyBulkWriteOperation, type Document } from 'mongodb';
import { loadConfig } from '../config';
import { archiveOf, rowsOf } from '../conversions/store';
import { mongo } from '../services/mongo';
import { formatMegabytes } from '../services/process';
import { down, ensure, stackContext } from '../services/stack';
import type { StackContext } from '../services/types';
import { appDataflows } from '../app/dataflows';
import { ENGINE_INDEXES } from '../runtime/engine-queries';
import { ensureIndexes } from '../state/mongo';
import { preloadConversions, PRELOAD_TENANT } from './preload';
import { wholeFlag } from './script';

export interface StoreSizeSpec {
  /** Archived conversions the preload writes (a tenth as many leads, hence rows). */
  docs: number;
  /** Churn bulks after it: each inserts 100 archive documents, overwrites 100 rows, deletes 50 of the oldest. */
  churn: number;
}

export interface StoreSizeResult {
  documents: number;
  bsonBytes: number;
  fileBytes: number;
  /** fileBytes / bsonBytes: the target is at most 3. */
  ratio: number;
  preloadMs: number;
  churnMs: number;
  stopMs: number;
  /** From `start` to the first answered ping, the figure `services up` waits for. */
  startMs: number;
  fileBytesAfterRestart: number;
  progress: string[];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Sum of the BSON sizes of every document of every collection in the database. */
async function bsonSize(client: MongoClient, dbName: string): Promise<{ documents: number; bytes: number }> {
  const db = client.db(dbName);
  let documents = 0;
  let bytes = 0;
  for (const { name } of await db.listCollections({}, { nameOnly: true }).toArray()) {
    for await (const doc of db.collection(name).find({}, { batchSize: 5000 })) {
      documents++;
      bytes += BSON.calculateObjectSize(doc);
    }
  }
  return { documents, bytes };
}

type Doc = Document & { _id: string };

async function churn(client: MongoClient, dbName: string, bulks: number, docs: number): Promise<void> {
  const db = client.db(dbName);
  // The collections the preload filled, typed loosely: the churn writes plain documents.
  const archive = db.collection<Doc>(archiveOf(db).collectionName);
  const rows = db.collection<Doc>(rowsOf(db).collectionName);
  const rowIds = (await rows.find({}, { projection: { _id: 1 } }).toArray()).map((r) => r._id);
  const archiveIds = (
    await archive
      .find({}, { projection: { _id: 1 } })
      .limit(bulks * 50)
      .toArray()
  ).map((d) => d._id);
  for (let b = 0; b < bulks; b++) {
    const inserts: AnyBulkWriteOperation<Doc>[] = Array.from({ length: 100 }, (_, i) => {
      const n = docs + b * 100 + i;
      return {
        insertOne: {
          document: {
            _id: `churn-${n}`,
            eventId: `churn-e${n}`,
            entityId: `pre-${n % Math.max(1, Math.floor(docs / 10))}`,
            tenantId: PRELOAD_TENANT,
            occurredAt: n * 1000,
            arrivedAt: n * 1000,
            topic: 'churn',
            partition: 0,
            offset: n,
            value: { conversionType: 'sold', amount: (n % 500) / 4 },
            counted: true,
          },
        },
      };
    });
    const updates: AnyBulkWriteOperation<Doc>[] = Array.from({ length: 100 }, (_, i) => ({
      updateOne: {
        filter: { _id: rowIds[(b * 100 + i) % rowIds.length]! },
        update: { $inc: { count: 1, version: 1 }, $set: { updatedAt: Date.now() } },
      },
    }));
    const deletes: AnyBulkWriteOperation<Doc>[] = archiveIds
      .slice(b * 50, b * 50 + 50)
      .map((id) => ({ deleteOne: { filter: { _id: id } } }));
    await archive.bulkWrite(inserts, { ordered: false });
    await rows.bulkWrite(updates, { ordered: false });
    if (deletes.length > 0) await archive.bulkWrite(deletes, { ordered: false });
  }
}

/** Runs the whole measurement in a fresh temporary state folder; removes it unless `keep`. */
export async function measureStoreSize(
  spec: StoreSizeSpec,
  out: (line: string) => void,
  keep = false,
): Promise<StoreSizeResult> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-store-size-'));
  const progress: string[] = [];
  const cfg = loadConfig(
    {
      ...process.env,
      MONGO_URL: '',
      KEYFLOW_STATE_DIR: stateDir,
      KEYFLOW_MONGO_SERVER: 'mongo-java-server',
      KEYFLOW_MONGO_PORT: String(await freePort()),
    },
    { require: [] },
  );
  const ctx: StackContext = stackContext(cfg, (line) => {
    progress.push(line);
    out(`  services: ${line}`);
  });
  const url = mongo.endpoint(ctx).env.MONGO_URL!;
  const dataFile = path.join(stateDir, 'data', 'mongo-java-server', 'keyflow.mv.db');
  const dbName = 'store_size';
  try {
    await ensure(ctx, mongo);
    let client = await MongoClient.connect(url);
    // The indexes a processor declares at its start, as on a used stack: mongo-java-server keeps only the
    // unique ones, but it walked a collection for each other one every time it opened.
    await ensureIndexes(client.db(dbName), [...ENGINE_INDEXES, ...appDataflows().flatMap((f) => f.indexes)]);
    out(`preloading ${spec.docs} archived conversions into ${url}`);
    let reported = Date.now();
    const preloadMs = await preloadConversions(
      client.db(dbName),
      { conversions: spec.docs, leads: Math.max(1, Math.floor(spec.docs / 10)) },
      (done) => {
        if (Date.now() - reported < 30_000) return;
        reported = Date.now();
        out(`  preloaded ${done}, file ${formatMegabytes(fs.statSync(dataFile).size)}`);
      },
    );
    out(`  preload ${preloadMs} ms, file ${formatMegabytes(fs.statSync(dataFile).size)}`);
    const churnStarted = Date.now();
    await churn(client, dbName, spec.churn, spec.docs);
    const churnMs = Date.now() - churnStarted;
    out(`  churn of ${spec.churn} bulks ${churnMs} ms, file ${formatMegabytes(fs.statSync(dataFile).size)}`);
    const { documents, bytes } = await bsonSize(client, dbName);
    await client.close();

    const stopStarted = Date.now();
    await down(ctx);
    const stopMs = Date.now() - stopStarted;
    const fileBytes = fs.statSync(dataFile).size;
    // Installed (compiled) before the clock starts: the figure is the store's start, not a build.
    await mongo.install(ctx);
    const startStarted = Date.now();
    await ensure(ctx, mongo);
    const startMs = Date.now() - startStarted;
    client = await MongoClient.connect(url);
    const after = await bsonSize(client, dbName);
    await client.close();
    if (after.documents !== documents) {
      throw new Error(`the restart lost documents: ${documents} before, ${after.documents} after`);
    }
    const result: StoreSizeResult = {
      documents,
      bsonBytes: bytes,
      fileBytes,
      ratio: fileBytes / bytes,
      preloadMs,
      churnMs,
      stopMs,
      startMs,
      fileBytesAfterRestart: fs.statSync(dataFile).size,
      progress,
    };
    return result;
  } finally {
    await down(ctx);
    if (!keep) fs.rmSync(stateDir, { recursive: true, force: true });
    else out(`kept ${stateDir}`);
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const spec = { docs: wholeFlag(args, 'docs', 1_000_000), churn: wholeFlag(args, 'churn', 2000) };
  const out = (line: string) => process.stdout.write(`${line}\n`);
  measureStoreSize(spec, out, args.includes('--keep')).then(
    (r) => {
      out(
        `documents ${r.documents}, BSON ${formatMegabytes(r.bsonBytes)}, file ${formatMegabytes(r.fileBytes)} ` +
          `(${r.ratio.toFixed(2)}x, target <= 3), stop ${r.stopMs} ms, start ${r.startMs} ms (target <= 15000)`,
      );
      out(JSON.stringify({ ...r, progress: undefined }));
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
