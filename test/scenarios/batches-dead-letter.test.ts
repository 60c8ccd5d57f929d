// An ingest event that is dead-lettered under the ingest stage's skip policy still finishes its asset:
// the BatchAssets row becomes `error`, the batch finishes with every asset counted once, and the
// dead-lettered asset is offered for reingest. The fault: a corrupt stored outcome for one asset, whose
// re-emission fails its topic's schema, so the event goes to the dead-letter topic.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { batchesFlow } from '../../src/batches';
import { COLLECTIONS, statusKey } from '../../src/batches/names';
import type { BatchAssetRow, BatchDoc } from '../../src/batches/store';
import { createCustomerKey } from '../../src/customers/keys';
import { cleanupAll, eventually, onCleanup } from '../helpers';
import { png } from './fixtures/images';
import { prefix, startBatchesRig, testConfig } from './harness';

jest.setTimeout(90_000);
afterAll(cleanupAll);

test('a skipped dead letter of the ingest stage marks its row error, so the batch finishes', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kf-dlq-'));
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'ok.png'), png(3, 2));
  writeFileSync(path.join(dir, 'bad.png'), png(5, 5));

  const p = prefix('ingestdlq');
  const config = testConfig();
  const flow = batchesFlow({ prefix: p, inspect: { fileRoot: dir } });
  const { db, base } = await startBatchesRig(config, flow);
  const key = (await createCustomerKey(db, 'acme')).key;

  // Batch ids come from one counter, so the next one is known: plant a corrupt outcome for its asset.
  const counter = await db
    .collection<{ _id: string; seq: number }>(COLLECTIONS.counters)
    .findOne({ _id: 'batch' });
  const next = (counter?.seq ?? 0) + 1;
  await db.collection(COLLECTIONS.ingestResults).insertOne({
    _id: statusKey(next, 'bad') as never,
    status: 'bogus',
    error: null,
    finished: 1,
    facts: null,
  });

  const res = await fetch(`${base}/customers/acme/queue/batches`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      assets: ['ok', 'bad'].map((id) => ({ id, origin: pathToFileURL(path.join(dir, `${id}.png`)).href })),
    }),
  });
  expect(res.status).toBe(201);
  const batchId = ((await res.json()) as { id: number }).id;
  expect(batchId).toBe(next);

  const done = await eventually(
    async () => {
      const b = await db.collection<BatchDoc>(COLLECTIONS.batches).findOne({ _id: batchId });
      return b?.finished ? b : undefined;
    },
    60_000,
    'the batch to finish',
  );
  expect(done).toMatchObject({ count: 2, completed: 1, errors: 1 });
  const rows = await db.collection<BatchAssetRow>(COLLECTIONS.batchAssets).find({ batchId }).toArray();
  const bad = rows.find((r) => r.assetId === 'bad');
  expect(bad).toMatchObject({
    status: 'error',
    error: expect.stringMatching(/^dead-lettered \(VALIDATION_FAILED\)/),
  });
  expect(rows.find((r) => r.assetId === 'ok')).toMatchObject({ status: 'completed' });

  // The letter is there, and the asset is what a reingest would pick up.
  const failed = await fetch(`${base}/customers/acme/queue/batches/${batchId}/assets?status=error`, {
    headers: { authorization: `Bearer ${key}` },
  });
  expect(((await failed.json()) as { items: { assetId: string }[] }).items.map((i) => i.assetId)).toEqual([
    'bad',
  ]);
});
