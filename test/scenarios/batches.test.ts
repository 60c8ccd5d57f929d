// Batches end to end on the real stack: a batch of 1,000 file assets (some missing, some not images)
// ends with counts equal to the true per-asset outcomes although every batch-status record is delivered
// twice and the fold stage is SIGKILLed and restarted mid-way; the error listing, reingest, per-batch
// status, named queries and each cleanup strategy do exactly what they say; other customers' keys and
// injection attempts are refused and change nothing.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Kafka, logLevel, type Consumer, type IHeaders, type Producer } from 'kafkajs';
import type { Db } from 'mongodb';
import { batchesFlow, flowNames } from '../../src/batches';
import { COLLECTIONS } from '../../src/batches/names';
import type { BatchAssetRow, BatchDoc } from '../../src/batches/store';
import type { Config } from '../../src/config';
import { createCustomerKey } from '../../src/customers/keys';
import { HEADERS } from '../../src/producers/headers';
import { cleanupAll, env, eventually, onCleanup, uniqueName } from '../helpers';
import { jpeg, png } from './fixtures/images';
import { exited, prefix, spawnInstance, startBatchesRig, testConfig } from './harness';

jest.setTimeout(300_000);
afterAll(cleanupAll);

const ASSETS = 1000;
const FOLD_SCRIPT = path.join(__dirname, 'fixtures', 'run-batches-fold.ts');
const COPY_HEADER = 'x-test-copy';

type Outcome = 'completed' | 'error';
interface World {
  base: string;
  db: Db;
  acmeKey: string;
  rivalKey: string;
  dir: string;
  truth: Map<string, { origin: string; outcome: Outcome; kind: 'png' | 'jpeg' | 'missing' | 'text' }>;
  config: Config;
  p: string;
}
let w: World;
let copies = 0;

function spawnFold(p: string, config: Config): Promise<ChildProcess> {
  return spawnInstance(FOLD_SCRIPT, { SCN_PREFIX: p, MONGO_DB: config.mongoDb, KEYFLOW_KEY_LANES: '4' });
}

/** Re-produces every batch-status record once more, without its event id: a duplicate by content only. */
async function duplicateStatusRecords(statusTopic: string): Promise<void> {
  const kafka = new Kafka({
    clientId: uniqueName('dup'),
    brokers: env('KAFKA_BROKERS').split(','),
    logLevel: logLevel.NOTHING,
  });
  const producer: Producer = kafka.producer();
  const consumer: Consumer = kafka.consumer({ groupId: uniqueName('dup') });
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topic: statusTopic, fromBeginning: true });
  onCleanup(async () => {
    await consumer.disconnect();
    await producer.disconnect();
  });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const originals = batch.messages.filter((m) => !m.headers?.[COPY_HEADER]);
      if (originals.length === 0) return;
      await producer.send({
        topic: statusTopic,
        messages: originals.map((m) => {
          const headers: IHeaders = { ...m.headers, [COPY_HEADER]: '1' };
          delete headers[HEADERS.EVENT_ID];
          return { key: m.key, value: m.value, headers, partition: batch.partition };
        }),
      });
      copies += originals.length;
    },
  });
}

async function api(
  method: string,
  url: string,
  opts: { key?: string | null; body?: unknown; raw?: string } = {},
) {
  const key = opts.key === undefined ? w.acmeKey : opts.key;
  const headers: Record<string, string> = {};
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: string | undefined;
  if (opts.raw !== undefined || opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = opts.raw ?? JSON.stringify(opts.body);
  }
  const res = await fetch(`${w.base}${url}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const rows = (filter: Record<string, unknown> = {}) =>
  w.db.collection<BatchAssetRow>(COLLECTIONS.batchAssets).find(filter).toArray();
const batchDoc = (id: number) => w.db.collection<BatchDoc>(COLLECTIONS.batches).findOne({ _id: id });

async function allAssets(
  batchId: number,
  status?: string,
): Promise<{ assetId: string; status: string; error: string | null }[]> {
  const out = [];
  for (let page = 1; ; page++) {
    const q = `?page=${page}&pageSize=300${status ? `&status=${status}` : ''}`;
    const res = await api('GET', `/customers/acme/queue/batches/${batchId}/assets${q}`);
    expect(res.status).toBe(200);
    out.push(...res.body.items);
    if (out.length >= res.body.total) return out;
  }
}

const finishedBatch = (id: number) =>
  eventually(
    async () => ((await batchDoc(id))?.finished ? batchDoc(id) : undefined),
    240_000,
    `batch ${id} to finish`,
  );

beforeAll(async () => {
  const p = prefix('batches');
  const config = testConfig();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kf-batches-'));
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  const flow = batchesFlow({ prefix: p, inspect: { fileRoot: dir } });
  const names = flowNames(p);
  const { db, port } = await startBatchesRig(config, flow, [names.ingestStage]);

  const truth: World['truth'] = new Map();
  for (let i = 0; i < ASSETS; i++) {
    const id = `img-${String(i).padStart(4, '0')}`;
    const kind = i % 10 === 3 ? 'missing' : i % 10 === 7 ? 'text' : i % 2 === 0 ? 'png' : 'jpeg';
    const file = path.join(dir, `${id}.${kind === 'jpeg' ? 'jpg' : 'png'}`);
    if (kind === 'png') writeFileSync(file, png(2 + (i % 5), 3));
    if (kind === 'jpeg') writeFileSync(file, jpeg(100 + i, 50));
    if (kind === 'text') writeFileSync(file, `not an image, asset ${i}\n`);
    truth.set(id, {
      origin: pathToFileURL(file).href,
      outcome: kind === 'png' || kind === 'jpeg' ? 'completed' : 'error',
      kind,
    });
  }
  const acmeKey = (await createCustomerKey(db, 'acme')).key;
  const rivalKey = (await createCustomerKey(db, 'rival')).key;
  w = { base: `http://127.0.0.1:${port}`, db, acmeKey, rivalKey, dir, truth, config, p };
  await duplicateStatusRecords(names.statusTopic);
});

let first: number;
let second: number;
let third: number;
const failedIds = () =>
  [...w.truth]
    .filter(([, t]) => t.outcome === 'error')
    .map(([id]) => id)
    .sort();

test('1,000 assets, duplicated status records and a SIGKILLed fold: counts equal the true outcomes', async () => {
  let fold = await spawnFold(w.p, w.config);
  const assets = [...w.truth].map(([id, t]) => ({ id, origin: t.origin }));
  const created = await api('POST', '/customers/acme/queue/batches', { body: { assets } });
  expect(created.status).toBe(201);
  expect(created.body).toMatchObject({
    count: ASSETS,
    completed: 0,
    errors: 0,
    finished: null,
    customerId: 'acme',
  });
  first = created.body.id;
  expect(Number.isInteger(first)).toBe(true);

  await eventually(
    async () =>
      (await rows({ batchId: first, status: { $ne: 'waiting' } })).length >= ASSETS / 4 ? true : undefined,
    120_000,
    'a quarter of the rows folded',
  );
  fold.kill('SIGKILL');
  await exited(fold);
  expect((await rows({ batchId: first, status: 'waiting' })).length).toBeGreaterThan(0); // the kill landed mid-way
  fold = await spawnFold(w.p, w.config);

  const done = (await finishedBatch(first))!;
  const failures = failedIds().length;
  expect(done).toMatchObject({
    count: ASSETS,
    completed: ASSETS - failures,
    errors: failures,
    superseded: 0,
  });
  for (const r of await rows({ batchId: first })) expect(r.status).toBe(w.truth.get(r.assetId)!.outcome);
  expect(copies).toBeGreaterThanOrEqual(ASSETS); // every record really came twice

  const view = await api('GET', `/customers/acme/queue/batches/${first}`);
  expect(view.body).toMatchObject({
    id: first,
    count: ASSETS,
    completed: ASSETS - failures,
    errors: failures,
  });
  expect(view.body.finished).toEqual(done.finished!.toISOString());
  fold.kill('SIGTERM');
  await exited(fold);
  // Restarting once more re-reads nothing new but must not disturb what is settled.
  await spawnFold(w.p, w.config);
});

test('?status=error lists exactly the failed assets, each with a clear error', async () => {
  const failed = await allAssets(first, 'error');
  expect(failed.map((r) => r.assetId).sort()).toEqual(failedIds());
  for (const r of failed) {
    expect(r.error).toMatch(
      w.truth.get(r.assetId)!.kind === 'missing' ? /does not exist/ : /is not an image/,
    );
  }
  expect((await allAssets(first)).length).toBe(ASSETS);
  expect((await allAssets(first, 'completed')).length).toBe(ASSETS - failed.length);
});

test('reingest makes a batch of exactly the failed assets; status stays per asset per batch', async () => {
  // The missing files now appear, so those assets fail in the first batch and succeed in the second.
  for (const t of w.truth.values()) {
    if (t.kind === 'missing') writeFileSync(new URL(t.origin), png(9, 9));
  }
  const res = await api('POST', `/customers/acme/queue/batches/${first}/reingest`);
  expect(res.status).toBe(201);
  second = res.body.id;
  expect(second).toBeGreaterThan(first);
  expect(res.body).toMatchObject({ count: failedIds().length, reingestOf: first });
  expect((await allAssets(second)).map((r) => r.assetId).sort()).toEqual(failedIds());

  const done = (await finishedBatch(second))!;
  const missing = [...w.truth].filter(([, t]) => t.kind === 'missing').map(([id]) => id);
  expect(done).toMatchObject({ completed: missing.length, errors: failedIds().length - missing.length });
  const one = missing[0]!;
  const history = await api('GET', `/customers/acme/images/${one}/batches`);
  expect(history.body.items.map((r: { batchId: number; status: string }) => [r.batchId, r.status])).toEqual([
    [first, 'error'],
    [second, 'completed'],
  ]);
  expect((await batchDoc(first))!.superseded).toBe(failedIds().length);

  const currentOfFirst = await api('GET', `/customers/acme/queue/batches/${first}/images?pageSize=1000`);
  expect(currentOfFirst.body.total).toBe(ASSETS - failedIds().length);
  const currentOfSecond = await api('GET', `/customers/acme/queue/batches/${second}/images?pageSize=1000`);
  expect(currentOfSecond.body.items.map((i: { id: string }) => i.id).sort()).toEqual(failedIds());
  expect(currentOfSecond.body.items.find((i: { id: string }) => i.id === one)).toMatchObject({
    status: 'completed',
    mediaType: 'image/png',
    width: 9,
    height: 9,
  });
  // Reingesting the reingest: the text files fail again, in a third batch.
  const again = await api('POST', `/customers/acme/queue/batches/${second}/reingest`);
  expect(again.status).toBe(201);
  third = again.body.id;
  await finishedBatch(third);
});

test('named queries filter on one or more batch ids given in one path element', async () => {
  const put = await api('PUT', '/customers/acme/named-queries/by-batch', {
    body: { template: 'batch=p1&status=p2' },
  });
  expect(put.status).toBe(200);
  expect(put.body.arity).toBe(2);
  const both = await api(
    'GET',
    `/customers/acme/named-queries/by-batch/${first},${second}/error?pageSize=1000`,
  );
  expect(both.status).toBe(200);
  const texts = [...w.truth].filter(([, t]) => t.kind === 'text').map(([id]) => id);
  expect(both.body.items.map((i: { id: string }) => i.id).sort()).toEqual(texts);
  const onlySecond = await api(
    'GET',
    `/customers/acme/named-queries/by-batch/${second}/completed?pageSize=1000`,
  );
  expect(onlySecond.body.total).toBe(failedIds().length - texts.length);
  const bad = await api('GET', `/customers/acme/named-queries/by-batch/${first},x/error`);
  expect(bad.status).toBe(400);
  expect(bad.body.error.message).toMatch(/batch "x" is not a batch id/);
  const badTemplate = await api('PUT', '/customers/acme/named-queries/q2', {
    body: { template: 'batch=p1&$where=p2' },
  });
  expect(badTemplate.status).toBe(400);
});

test('each cleanup strategy removes exactly its rows; a dry run only reports them', async () => {
  const thirdRows = await rows({ batchId: third });
  const before = await batchDoc(first);

  const superseded = await rows({ supersededBy: { $ne: null } });
  const dry = await api('POST', '/customers/acme/queue/batch-assets/cleanup', {
    body: { strategy: 'superseded', dryRun: true },
  });
  expect(dry.status).toBe(200);
  expect(dry.body).toMatchObject({ dryRun: true, matched: superseded.length, removed: 0 });
  expect((await rows({ supersededBy: { $ne: null } })).length).toBe(superseded.length);
  const run = await api('POST', '/customers/acme/queue/batch-assets/cleanup', {
    body: { strategy: 'superseded' },
  });
  expect(run.body).toMatchObject({ removed: superseded.length });
  expect(await rows({ supersededBy: { $ne: null } })).toEqual([]);

  // Age 100 completed rows of the first batch by 40 days.
  const aged = (await rows({ batchId: first, status: 'completed' })).slice(0, 100).map((r) => r._id);
  await w.db
    .collection<BatchAssetRow>(COLLECTIONS.batchAssets)
    .updateMany({ _id: { $in: aged } }, { $set: { finished: new Date(Date.now() - 40 * 86_400_000) } });
  const dryOld = await api('POST', '/customers/acme/queue/batch-assets/cleanup', {
    body: { strategy: 'older-than', days: 30, dryRun: true },
  });
  expect(dryOld.body.matched).toBe(100);
  expect(
    dryOld.body.rows.map((r: { batchId: number; assetId: string }) => `${r.batchId}:${r.assetId}`).sort(),
  ).toEqual([...aged].sort());
  const runOld = await api('POST', '/customers/acme/queue/batch-assets/cleanup', {
    body: { strategy: 'older-than', days: 30 },
  });
  expect(runOld.body.removed).toBe(100);
  expect(await rows({ _id: { $in: aged } })).toEqual([]);

  const completed = await rows({ status: 'completed' });
  const runCompleted = await api('POST', '/customers/acme/queue/batch-assets/cleanup', {
    body: { strategy: 'completed' },
  });
  expect(runCompleted.body.removed).toBe(completed.length);
  const left = await rows();
  expect(left.every((r) => r.status === 'error')).toBe(true);
  expect(left.length).toBeGreaterThan(0);
  // Counts of a finished batch are final: cleaning its rows does not change them.
  expect(await batchDoc(first)).toMatchObject({
    count: before!.count,
    completed: before!.completed,
    errors: before!.errors,
  });
  expect(left.filter((r) => r.batchId === third)).toEqual(thirdRows);
});

test("another customer's key and a missing or unknown key are refused everywhere, revealing nothing", async () => {
  const paths: [string, string, unknown?][] = [
    ['GET', `/customers/acme/queue/batches/${first}`],
    ['GET', `/customers/acme/queue/batches/999999`],
    ['GET', `/customers/acme/queue/batches/${first}/images`],
    ['GET', `/customers/acme/queue/batches/${first}/assets?status=error`],
    ['POST', `/customers/acme/queue/batches/${first}/reingest`],
    ['POST', '/customers/acme/queue/batches', { assets: [{ id: 'x', origin: 'file:///x.png' }] }],
    ['GET', `/customers/acme/images/img-0001/batches`],
    ['PUT', '/customers/acme/named-queries/evil', { template: 'batch=p1' }],
    ['GET', `/customers/acme/named-queries/by-batch/${first}/error`],
    ['POST', '/customers/acme/queue/batch-assets/cleanup', { strategy: 'completed' }],
  ];
  const batchesBefore = await w.db.collection(COLLECTIONS.batches).countDocuments();
  const rowsBefore = await w.db.collection(COLLECTIONS.batchAssets).countDocuments();
  for (const [method, url, body] of paths) {
    const rival = await api(method, url, { key: w.rivalKey, body });
    expect([method, url, rival.status]).toEqual([method, url, 403]);
    expect(JSON.stringify(rival.body)).not.toMatch(/img-|count|acme/);
    expect((await api(method, url, { key: null, body })).status).toBe(401);
    expect((await api(method, url, { key: 'kf_' + 'A'.repeat(43), body })).status).toBe(401);
  }
  // acme's key cannot reach rival's space either.
  expect((await api('GET', '/customers/rival/queue/batches/1')).status).toBe(403);
  expect(await w.db.collection(COLLECTIONS.batches).countDocuments()).toBe(batchesBefore);
  expect(await w.db.collection(COLLECTIONS.batchAssets).countDocuments()).toBe(rowsBefore);
  expect((await api('GET', `/customers/acme/queue/batches/999999`)).status).toBe(404);
});

test('injection attempts and bad input get a 400 naming the problem and touch nothing', async () => {
  const batchesBefore = await w.db.collection(COLLECTIONS.batches).countDocuments();
  const cases: [string, string, { body?: unknown; raw?: string }, RegExp][] = [
    ['GET', `/customers/acme/queue/batches/${first}/assets?status[$ne]=x`, {}, /status\[\$ne\]/],
    ['GET', `/customers/acme/queue/batches/${first}/assets?status=done`, {}, /query\.status/],
    ['GET', '/customers/acme/queue/batches/abc', {}, /params\.batchId/],
    ['GET', `/customers/acme/queue/batches/${first}/assets?pageSize=100000`, {}, /query\.pageSize/],
    ['POST', '/customers/acme/queue/batches', { body: { $gt: '' } }, /body/],
    [
      'POST',
      '/customers/acme/queue/batches',
      { body: { assets: [{ id: { $gt: '' }, origin: 'file:///x' }] } },
      /body\.assets\.0\.id/,
    ],
    [
      'POST',
      '/customers/acme/queue/batches',
      { body: { assets: [{ id: 'a', origin: { $ne: null } }] } },
      /body\.assets\.0\.origin/,
    ],
    ['POST', '/customers/acme/queue/batches', { raw: '{"assets": [' }, /JSON/i],
    [
      'POST',
      '/customers/acme/queue/batch-assets/cleanup',
      { body: { strategy: 'older-than', days: { $gt: 0 } } },
      /body\.days/,
    ],
    ['GET', `/customers/acme/images/${encodeURIComponent('$where')}/batches`, {}, /params\.imageId/],
  ];
  for (const [method, url, opts, message] of cases) {
    const res = await api(method, url, opts);
    expect([url, res.status]).toEqual([url, 400]);
    expect(res.body.error.message).toMatch(message);
  }
  const huge = { assets: [{ id: 'a', origin: `file:///${'x'.repeat(2 * 1024 * 1024)}` }] };
  expect((await api('POST', '/customers/acme/queue/batches', { body: huge })).status).toBe(413);
  expect(await w.db.collection(COLLECTIONS.batches).countDocuments()).toBe(batchesBefore);
});

test('the OpenAPI document and the BatchAssets gauge are served', async () => {
  // The gauge is refreshed in the background (never by the scrape), so it shows the errors shortly after.
  const metrics = await eventually(
    async () => {
      const text = await (await fetch(`${w.base}/metrics`)).text();
      return /keyflow_batch_assets\{status="error"\} [1-9]/.test(text) ? text : undefined;
    },
    30_000,
    'the BatchAssets gauge to count the errors',
  );
  expect(metrics).toMatch(/keyflow_batch_assets\{status="error"\} [1-9]/);
  const res = await fetch(`${w.base}/openapi/batches.json`);
  expect(res.status).toBe(200);
  const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
  expect(doc.openapi).toBe('3.1.0');
  expect(Object.keys(doc.paths)).toContain('/customers/{customerId}/queue/batches/{batchId}/assets');
});
