// A batch whose origins point at loopback (in several spellings), the cloud metadata address and a file
// outside the file root finishes with each of those assets in error "refused by policy", and no
// connection reaches the listener on 127.0.0.1 that every loopback origin names. Credentials and query
// strings in an origin appear in no recorded error.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { batchesFlow } from '../../src/batches';
import { COLLECTIONS } from '../../src/batches/names';
import type { BatchAssetRow, BatchDoc } from '../../src/batches/store';
import { createCustomerKey } from '../../src/customers/keys';
import { cleanupAll, eventually, onCleanup } from '../helpers';
import { png } from './fixtures/images';
import { prefix, startBatchesRig, testConfig } from './harness';

jest.setTimeout(90_000);
afterAll(cleanupAll);

test('loopback, metadata and file:///etc/passwd origins are refused by policy and nothing connects', async () => {
  const connections: string[] = [];
  const listener = net.createServer((socket) => {
    connections.push(String(socket.remoteAddress));
    socket.destroy();
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => listener.close(() => r())));
  const port = (listener.address() as net.AddressInfo).port;

  const dir = mkdtempSync(path.join(os.tmpdir(), 'kf-policy-'));
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'ok.png'), png(3, 2));

  const p = prefix('policy');
  const config = testConfig();
  const flow = batchesFlow({ prefix: p, inspect: { fileRoot: dir, timeoutMs: 2000 } });
  const { db, base } = await startBatchesRig(config, flow);
  const key = (await createCustomerKey(db, 'acme')).key;

  const refused = {
    loopback: `http://127.0.0.1:${port}/a.png`,
    named: `http://localhost:${port}/a.png`,
    mapped: `http://[::ffff:127.0.0.1]:${port}/a.png`,
    decimal: `http://2130706433:${port}/a.png`,
    secret: `http://admin:hunter2@127.0.0.1:${port}/a.png?signature=s3cr3t`,
    metadata: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    passwd: 'file:///etc/passwd',
  };
  const assets = [
    ...Object.entries(refused).map(([id, origin]) => ({ id, origin })),
    { id: 'fine', origin: pathToFileURL(path.join(dir, 'ok.png')).href },
  ];
  const res = await fetch(`${base}/customers/acme/queue/batches`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ assets }),
  });
  expect(res.status).toBe(201);
  const batchId = ((await res.json()) as { id: number }).id;

  const batches = db.collection<BatchDoc>(COLLECTIONS.batches);
  const done = await eventually(
    async () => {
      const b = await batches.findOne({ _id: batchId });
      return b?.finished ? b : undefined;
    },
    60_000,
    'the batch to finish',
  );
  expect(done).toMatchObject({ count: assets.length, completed: 1, errors: assets.length - 1 });

  const rows = await db.collection<BatchAssetRow>(COLLECTIONS.batchAssets).find({ batchId }).toArray();
  const byId = new Map(rows.map((r) => [r.assetId, r]));
  expect(byId.get('fine')).toMatchObject({ status: 'completed', error: null });
  for (const id of Object.keys(refused)) {
    expect(byId.get(id)).toMatchObject({
      status: 'error',
      error: expect.stringMatching(/refused by policy/),
    });
  }
  const errors = rows.map((r) => r.error ?? '').join('\n');
  expect(errors).not.toMatch(/hunter2|admin|s3cr3t|signature/);
  expect(errors).not.toMatch(/root:|nologin/); // nothing of what a target holds is echoed
  expect(connections).toEqual([]);
});
