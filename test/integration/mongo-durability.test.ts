// Each test runs its own mongo-java-server on its own data file and SIGKILLs it (a real signal to the
// real process), then restarts it on the same file:
// - the server keeps what it acknowledged: a kill right after the last acknowledged write loses none.
//   (Before its launcher committed after each write, such a kill lost the last second of them.)
// - our bulk writes never take a write the server did not carry out for done: a kill in the middle of
//   one makes it fail as a store outage. (Before, the driver's wrapped network error, which lists no
//   write errors, read as "no operation failed", and the fault suite's kill lost whole batches.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient } from 'mongodb';
import { loadConfig } from '../../src/config';
import { KeyflowError } from '../../src/errors';
import { isAlive } from '../../src/services/process';
import { mongo } from '../../src/services/mongo';
import { ensure, readPid, stackContext } from '../../src/services/stack';
import { writeGuarded, type GuardedWrite } from '../../src/state/bulk';
import { cleanupAll, freePort, onCleanup } from '../helpers';

afterAll(cleanupAll);

/** A mongo-java-server of the test's own: start, SIGKILL and a client on it. */
async function privateServer() {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-durable-'));
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
  const ctx = stackContext(cfg);
  const url = mongo.endpoint(ctx).env.MONGO_URL!;
  const server = {
    start: () => ensure(ctx, mongo),
    /** Sends the signal now (synchronously) and resolves once the process is gone. */
    kill: async () => {
      const pid = readPid(ctx, 'mongo');
      if (pid === undefined || !isAlive(pid)) return;
      process.kill(-pid, 'SIGKILL');
      while (isAlive(pid)) await sleep(50);
    },
    client: async (monitorCommands = false) => {
      const c = new MongoClient(url, { monitorCommands });
      await c.connect();
      onCleanup(() => c.close(true).catch(() => undefined));
      return c;
    },
  };
  onCleanup(async () => {
    await server.kill();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  await server.start();
  return server;
}

test('mongo-java-server SIGKILLed after 600 acknowledged writes has all 600 after its restart', async () => {
  const server = await privateServer();
  const writer = await server.client();
  const col = writer.db('durable').collection<{ _id: number | string; n?: number }>('x');
  for (let i = 0; i < 600; i++) {
    await col.bulkWrite(
      [
        { insertOne: { document: { _id: i } } },
        { updateOne: { filter: { _id: 'n' }, update: { $inc: { n: 1 } }, upsert: true } },
      ],
      { ordered: false },
    );
  }
  await server.kill();
  await writer.close(true).catch(() => undefined);

  await server.start();
  const x = (await server.client()).db('durable').collection<{ _id: number | string; n?: number }>('x');
  expect(await x.countDocuments({ _id: { $ne: 'n' } })).toBe(600);
  expect((await x.findOne({ _id: 'n' }))?.n).toBe(600);
});

test('a bulk write the server dies in the middle of fails as STORE_TRANSIENT, never as done', async () => {
  const server = await privateServer();
  const writer = await server.client(true);
  const col = writer.db('durable').collection<{ _id: string; n: number }>('guarded');
  // 3000 inserts: the driver sends them as three commands of 1000 (the server's maxWriteBatchSize).
  const writes: GuardedWrite<{ _id: string; n: number }>[] = Array.from({ length: 3000 }, (_, i) => ({
    index: i,
    _id: `d${i}`,
    insert: { _id: `d${i}`, n: i },
  }));
  let killed: Promise<void> | undefined;
  writer.on('commandStarted', (e) => {
    if (e.commandName === 'insert') killed ??= server.kill();
  });

  const outcome = await writeGuarded(col, writes, 'doc').then(
    (failures) => ({ resolved: failures.length }),
    (err: unknown) => ({ rejected: err instanceof KeyflowError ? err.code : String(err) }),
  );
  await killed;
  expect(outcome).toEqual({ rejected: 'STORE_TRANSIENT' });

  // What did reach the file is short of the whole: the failure was real, and the runner retries it.
  await server.start();
  const after = (await server.client()).db('durable').collection('guarded');
  expect(await after.countDocuments({})).toBeLessThan(writes.length);
});
