// Replay through the `_id`-keyed entity history, on the real store: a full pass whose shards own id
// ranges checks every lead once; `replay --since` checks only the leads a live write touched since
// then (a drifted lead nobody touched is left to the full pass); a store archived before the history
// existed gets it built from the archive on first replay.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Db, MongoClient } from 'mongodb';
import { preloadConversions } from '../../src/bench/preload';
import { conversionsReplay } from '../../src/conversions/replay';
import { ARCHIVE, ROWS } from '../../src/conversions/store';
import { replayEntity } from '../../src/replay/engine';
import { replayAll } from '../../src/replay/full-pass';
import { REPLAY_RUNS_COLLECTION } from '../../src/replay/runs';
import { replaySince } from '../../src/replay/since';
import { historyName, recordHistory } from '../../src/state/entity-history';
import { cleanupAll, freshDb } from '../helpers';

afterAll(cleanupAll);

const BIN = path.join(__dirname, '..', '..', 'bin', 'keyflow.js');
const tables = [conversionsReplay];
let db: Db;
let client: MongoClient;

beforeAll(async () => {
  ({ db, client } = await freshDb('kfhistory'));
  // 20 leads, 3 events each (one row per type), each lead's history written as the live stage writes it.
  await preloadConversions(db, { conversions: 60, leads: 20 });
});

/** A live write listing an archived event of the lead again: it marks the lead touched now. */
async function touch(leadId: string): Promise<void> {
  const event = await db.collection(ARCHIVE).findOne({ entityId: leadId });
  expect(
    await recordHistory(db, ARCHIVE, [{ index: 0, entityId: leadId, archiveId: String(event!._id) }]),
  ).toEqual([]);
}

const tamper = (leadId: string) =>
  db.collection(ROWS).updateOne({ leadId, conversionType: 'contacted' }, { $inc: { count: 5 } });

test('a full pass with range shards checks every lead once and finds none drifted', async () => {
  const summary = await replayAll(db, tables, { shards: 4, batch: 3 });
  expect(summary).toMatchObject({ status: 'done', checked: 20, differences: 0 });
  const run = await db.collection(REPLAY_RUNS_COLLECTION).findOne({ _id: summary.runId as never });
  expect(run).toMatchObject({ hash: 'range' });
  expect((run!.bounds as string[][])[0]).toHaveLength(3);
});

test('--since checks only the leads touched since then, and repairs the drifted one', async () => {
  const since = new Date();
  expect((await replaySince(db, tables, since)).checked).toBe(0);
  await touch('pre-3');
  await tamper('pre-3');
  await tamper('pre-4'); // drifted, but no live write touched it
  const found = await replaySince(db, tables, since);
  expect(found).toMatchObject({ checked: 1, withDifferences: 1, remaining: 1 });
  expect(found.differenceList).toEqual([
    expect.objectContaining({ entityId: 'pre-3', table: ROWS, field: 'count' }),
  ]);
  const fixed = await replaySince(db, tables, since, { repair: true });
  expect(fixed).toMatchObject({ checked: 1, repaired: 1, remaining: 0 });
  // The untouched drift is the full pass's to find.
  expect((await replayEntity(db, tables, 'pre-4')).differences).toHaveLength(1);
  await replayEntity(db, tables, 'pre-4', { repair: true });
});

test('keyflow replay --since: an age, JSON, exit 1 while a touched lead differs', async () => {
  await touch('pre-6');
  await tamper('pre-6');
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, 'replay', '--since', '10m', '--json', ...args], {
      encoding: 'utf8',
      env: { ...process.env, MONGO_DB: db.databaseName, LOG_LEVEL: 'error' },
      timeout: 60_000,
    });
  const found = cli();
  expect(found.status).toBe(1);
  // pre-3 (touched by the test above) and pre-6.
  expect(JSON.parse(found.stdout)).toMatchObject({ checked: 2, withDifferences: 1, remaining: 1 });
  expect(cli('--repair').status).toBe(0);
  expect(cli().status).toBe(0);
  const bad = spawnSync(process.execPath, [BIN, 'replay', '--since', 'yesterday'], {
    encoding: 'utf8',
    env: { ...process.env, MONGO_DB: db.databaseName, LOG_LEVEL: 'error' },
  });
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/--since takes an ISO time/);
});

test('a store archived before the history existed gets it built on first replay', async () => {
  await db.collection(historyName(ARCHIVE)).drop();
  // A new Db handle: replay readies a table once per handle and process.
  const again = client.db(db.databaseName);
  await tamper('pre-9');
  const report = await replayEntity(again, tables, 'pre-9');
  expect(report.differences).toEqual([
    expect.objectContaining({ entityId: 'pre-9', table: ROWS, field: 'count' }),
  ]);
  expect(await again.collection(historyName(ARCHIVE)).countDocuments({ entityId: { $exists: true } })).toBe(
    20,
  );
  expect((await replayEntity(again, tables, 'pre-9', { repair: true })).differences).toEqual([]);
});
