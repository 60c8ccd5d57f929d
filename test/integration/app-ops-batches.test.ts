// The assembled app: /ops reports batch progress from the batches domain (wired in src/app/main.ts).
import { startApp } from '../../src/app/main';
import { createLogger } from '../../src/logger';
import { cleanupAll, onCleanup } from '../helpers';
import { freshDbNamed, testConfig } from '../scenarios/harness';

afterAll(cleanupAll);

test('the ops API lists the latest batches with their progress', async () => {
  const token = 'ops-batches-admin-token-0123456789abcdef';
  const config = testConfig({ PORT: '0', ADMIN_PORT: '0', KEYFLOW_ADMIN_TOKEN: token });
  const app = await startApp(config, createLogger('error'));
  onCleanup(() => app.stop());
  const { db } = await freshDbNamed(config.mongoDb);
  const base = {
    customerId: 'c1',
    submitted: new Date(),
    superseded: 0,
    reingestOf: null,
    rev: 1,
    countsRev: 1,
  };
  // As createBatch leaves them: ids from the batch counter, which the listing counts down from.
  await db.collection('Counters').insertOne({ _id: 'batch' as never, seq: 2 });
  await db.collection('Batches').insertMany([
    { _id: 1 as never, ...base, count: 10, completed: 7, errors: 3, finished: new Date() },
    { _id: 2 as never, ...base, count: 5, completed: 1, errors: 0, finished: null },
  ]);
  const res = await fetch(`http://127.0.0.1:${app.adminPort}/ops/api/batches`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({
    available: true,
    batches: [
      { id: '2', status: 'running', total: 5, done: 1, failed: 0 },
      { id: '1', status: 'finished', total: 10, done: 10, failed: 3 },
    ],
  });
});
