// The local mongo-java-server keeps what it acknowledged: a SIGKILL right after the last acknowledged
// write and a restart on the same data file lose none of them. (Before its launcher committed after each
// write, such a kill lost the last second of acknowledged writes, and the fault suite's Mongo kill with it.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient } from 'mongodb';
import { loadConfig } from '../../src/config';
import { isAlive } from '../../src/services/process';
import { mongo } from '../../src/services/mongo';
import { ensure, readPid, stackContext } from '../../src/services/stack';
import { cleanupAll, freePort, onCleanup } from '../helpers';

afterAll(cleanupAll);

test('mongo-java-server SIGKILLed after 600 acknowledged writes has all 600 after its restart', async () => {
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
  const kill = async () => {
    const pid = readPid(ctx, 'mongo');
    if (pid === undefined || !isAlive(pid)) return;
    process.kill(-pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(50);
  };
  onCleanup(async () => {
    await kill();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  const url = mongo.endpoint(ctx).env.MONGO_URL!;

  await ensure(ctx, mongo);
  const writer = new MongoClient(url);
  await writer.connect();
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
  await kill();
  await writer.close(true).catch(() => undefined);

  await ensure(ctx, mongo);
  const reader = new MongoClient(url);
  await reader.connect();
  onCleanup(() => reader.close());
  const x = reader.db('durable').collection<{ _id: number | string; n?: number }>('x');
  expect(await x.countDocuments({ _id: { $ne: 'n' } })).toBe(600);
  expect((await x.findOne({ _id: 'n' }))?.n).toBe(600);
});
