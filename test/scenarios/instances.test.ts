// Processor instances come and go: a SIGKILL mid-batch, or an instance leaving its group mid-stream,
// loses no event and applies none twice. Each instance is a real child process.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { cleanupAll, env, eventually, onCleanup } from '../helpers';
import { COUNTERS, counterEvent, counterTopology, type CounterDoc } from './fixtures/counter';
import { exited, prefix, spawnInstance, testConfig, testProducer } from './harness';
import type { Config } from '../../src/config';

afterAll(cleanupAll);

const SCRIPT = path.join(__dirname, 'fixtures', 'run-counter.ts');

function startInstance(p: string, config: Config): Promise<ChildProcess> {
  return spawnInstance(SCRIPT, { SCN_PREFIX: p, MONGO_DB: config.mongoDb });
}

/** `keys` keys of `perKey` events each; an event's delay falls with its seq (perKey ms down to 1). */
async function setup(name: string, keys: number, perKey: number) {
  const p = prefix(name);
  const config = testConfig();
  const topology = counterTopology(p);
  const producer = await testProducer(config, topology);
  const client = new MongoClient(env('MONGO_URL'));
  await client.connect();
  const db = client.db(config.mongoDb);
  onCleanup(async () => {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  });
  const total = keys * perKey;
  const publish = async () => {
    // Two events of one key running at once (after a hand-over, say) would finish out of order.
    const events = Array.from({ length: total }, (_, i) => {
      const seq = Math.floor(i / keys);
      return counterEvent(`i${i % keys}`, seq, { delayMs: perKey - seq });
    });
    for (let i = 0; i < events.length; i += 500) {
      await producer.publish(
        events.slice(i, i + 500).map((e) => ({ topic: `${p}.in`, key: e.id, value: e, eventId: e.eventId })),
      );
    }
  };
  const applied = async () =>
    (await db.collection<CounterDoc>(COUNTERS).find().toArray()).reduce((n, d) => n + d.count, 0);
  const expectExact = async () => {
    const docs = await eventually(
      async () => {
        const d = await db.collection<CounterDoc>(COUNTERS).find().toArray();
        return d.length === keys && d.every((x) => x.count >= perKey) ? d : undefined;
      },
      120_000,
      'every key to reach its count',
    );
    const want = Array.from({ length: perKey }, (_, i) => i);
    for (const d of docs) {
      expect(d.count).toBe(perKey); // more would mean an effect applied twice
      expect(d.seqs).toEqual(want); // per-key order held across the crash or hand-over
    }
  };
  return { p, config, publish, applied, expectExact, total };
}

test('SIGKILL of the processor mid-batch, then a restart: nothing lost, no effect applied twice', async () => {
  const s = await setup('sigkill', 40, 30);
  const first = await startInstance(s.p, s.config);
  await s.publish();
  await eventually(
    async () => ((await s.applied()) >= s.total / 4 ? true : undefined),
    90_000,
    'a quarter applied',
  );
  first.kill('SIGKILL');
  await exited(first);
  const before = await s.applied();
  expect(before).toBeLessThan(s.total); // the kill really landed mid-stream
  const second = await startInstance(s.p, s.config);
  await s.expectExact();
  second.kill('SIGTERM');
  await exited(second);
});

test('two instances share the stage; one leaving mid-stream loses nothing and applies nothing twice', async () => {
  const s = await setup('handover', 40, 30);
  const a = await startInstance(s.p, s.config);
  const b = await startInstance(s.p, s.config);
  await s.publish();
  await eventually(
    async () => ((await s.applied()) >= s.total / 4 ? true : undefined),
    90_000,
    'a quarter applied',
  );
  a.kill('SIGTERM');
  await exited(a);
  expect(a.exitCode).toBe(0); // it drained and left the group cleanly
  expect(await s.applied()).toBeLessThan(s.total);
  await s.expectExact();
  b.kill('SIGTERM');
  await exited(b);
});
