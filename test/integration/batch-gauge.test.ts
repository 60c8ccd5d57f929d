// /metrics never aggregates a collection while Prometheus waits: the BatchAssets gauge is refreshed in
// the background and a scrape only reads the last counts. Checked with MongoDB command monitoring.
import { MongoClient, type CommandStartedEvent } from 'mongodb';
import { Registry } from 'prom-client';
import { registerBatchAssetsGauge } from '../../src/batches/metrics';
import { rowsOf } from '../../src/batches/store';
import { cleanupAll, env, eventually, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

function gaugeValues(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^keyflow_batch_assets\{status="(\w+)"\} (\d+)$/gm))
    out[m[1]!] = Number(m[2]);
  return out;
}

test('a scrape issues no aggregate, and the batch-asset gauges follow the rows', async () => {
  const client = new MongoClient(env('MONGO_URL'), { monitorCommands: true });
  await client.connect();
  const db = client.db(uniqueName('kfgauge').replace(/-/g, '_'));
  onCleanup(async () => {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  });
  const commands: string[] = [];
  client.on('commandStarted', (e: CommandStartedEvent) => commands.push(e.commandName));
  const row = (i: number, status: string) => ({ _id: `b1:a${i}`, batchId: 1, assetId: `a${i}`, status });
  await rowsOf(db).insertMany([
    row(1, 'waiting'),
    row(2, 'waiting'),
    row(3, 'completed'),
    row(4, 'error'),
  ] as never[]);

  const registry = new Registry();
  const gauge = registerBatchAssetsGauge(registry, db, { intervalMs: 100 });
  onCleanup(async () => gauge?.stop());
  const want = { waiting: 2, completed: 1, error: 1 };
  await eventually(
    async () => {
      const got = gaugeValues(await registry.metrics());
      return JSON.stringify(got) === JSON.stringify(want) ? got : undefined;
    },
    10_000,
    'first counts',
  );

  for (let i = 0; i < 5; i++) {
    commands.length = 0;
    const text = await registry.metrics();
    expect(commands).toEqual([]);
    expect(gaugeValues(text)).toEqual(want);
  }

  await rowsOf(db).updateOne({ _id: 'b1:a1' } as never, { $set: { status: 'completed' } });
  await eventually(
    async () => {
      const got = gaugeValues(await registry.metrics());
      return got.waiting === 1 && got.completed === 2 ? got : undefined;
    },
    10_000,
    'counts after a transition',
  );
});
