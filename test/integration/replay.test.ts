// Replay against the real MongoDB-protocol server, with a small derived table (fixtures/totals.ts): a
// clean state reports nothing; a row changed behind the table's back is found field by field and repaired;
// a full pass over 10,000 events in 4 shards finds exactly the tampered entities; an interrupted pass
// resumes from its checkpoints without redoing finished entities; a repair racing a live update reports a
// conflict instead of overwriting it; the HTTP routes and the `keyflow replay` command answer.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Db, MongoClient } from 'mongodb';
import { replayRoutes } from '../../src/api/replay-routes';
import { createServer, type ApiServer } from '../../src/api/server';
import { createLogger } from '../../src/logger';
import { HealthSource } from '../../src/monitoring/health';
import { createMetricsRegistry } from '../../src/monitoring/metrics';
import { replayEntity } from '../../src/replay/engine';
import { replayAll, type ReplayProgress } from '../../src/replay/full-pass';
import { REPLAY_RUNS_COLLECTION, type ReplayRunDoc } from '../../src/replay/runs';
import { cleanupAll, freshDb, onCleanup, uniqueName } from '../helpers';
import { reduceTotals, TotalsFixture } from './fixtures/totals';

jest.setTimeout(180_000);
afterAll(cleanupAll);

let db: Db;
let client: MongoClient;

beforeAll(async () => {
  ({ db, client } = await freshDb('kfreplay'));
});

async function smallFixture(name: string, opts: ConstructorParameters<typeof TotalsFixture>[1] = {}) {
  const fx = new TotalsFixture(db, { ...opts, name });
  for (const [i, amount] of [5, 7, 11].entries()) {
    await fx.live({ id: `${name}-a-${i}`, entityId: 'acct-a', amount, occurredAt: 1000 + i });
  }
  await fx.live({ id: `${name}-b-0`, entityId: 'acct-b', amount: 3, occurredAt: 2000 });
  return fx;
}

describe('one entity', () => {
  test('a clean state reports zero differences, and an entity without events too', async () => {
    const fx = await smallFixture('clean');
    const report = await replayEntity(db, [fx.table()], 'acct-a');
    expect(report.tables).toEqual([
      { table: 'clean', kind: 'derived', status: 'clean', found: 0, remaining: 0, attempts: 0 },
    ]);
    expect(report.differences).toEqual([]);
    expect((await replayEntity(db, [fx.table()], 'no-such-entity')).differences).toEqual([]);
  });

  test('a value changed behind the table is found exactly, repaired, and then checks clean', async () => {
    const fx = await smallFixture('tampered');
    await fx.rows().updateOne({ _id: 'acct-a' }, { $set: { total: 999 } });
    await fx.rows().deleteOne({ _id: 'acct-b' });

    const found = await replayEntity(db, [fx.table()], 'acct-a');
    expect(found.differences).toEqual([
      { entityId: 'acct-a', table: 'tampered', row: 'acct-a', field: 'total', expected: 23, actual: 999 },
    ]);
    const missing = await replayEntity(db, [fx.table()], 'acct-b');
    expect(missing.differences).toEqual([
      {
        entityId: 'acct-b',
        table: 'tampered',
        row: 'acct-b',
        field: '(row)',
        expected: { _id: 'acct-b', total: 3, count: 1, lastAt: new Date(2000) },
        actual: null,
      },
    ]);

    const repaired = await replayEntity(db, [fx.table()], 'acct-a', { repair: true });
    expect(repaired.tables[0]).toMatchObject({ status: 'repaired', found: 1, remaining: 0, attempts: 1 });
    expect(repaired.found).toEqual(found.differences);
    expect(repaired.differences).toEqual([]);
    expect(await fx.rows().findOne({ _id: 'acct-a' })).toMatchObject({ total: 23, count: 3, version: 4 });
    expect((await replayEntity(db, [fx.table()], 'acct-b', { repair: true })).differences).toEqual([]);

    expect((await replayEntity(db, [fx.table()], 'acct-a')).differences).toEqual([]);
    expect((await replayEntity(db, [fx.table()], 'acct-b')).differences).toEqual([]);
  });

  test('a repair racing a live update every time reports a conflict and leaves the live row alone', async () => {
    let n = 0;
    const fx: TotalsFixture = await smallFixture('racing', {
      // Each attempt, a live event lands between replay's read and its guarded write.
      beforeRepair: (entityId) => fx.live({ id: `race-${n}`, entityId, amount: 100, occurredAt: 5000 + n++ }),
    });
    await fx.rows().updateOne({ _id: 'acct-a' }, { $set: { total: 999 } });
    const report = await replayEntity(db, [fx.table()], 'acct-a', {
      repair: true,
      attempts: 3,
      backoffMs: 5,
    });
    expect(report.tables[0]).toMatchObject({ status: 'conflict', attempts: 3, remaining: 1 });
    expect(report.conflicts).toEqual([
      { entityId: 'acct-a', table: 'racing', attempts: 3, message: expect.stringContaining('changed') },
    ]);
    // The tampered value plus the three live increments: nothing of the live updates was overwritten.
    expect(report.differences).toEqual([
      { entityId: 'acct-a', table: 'racing', row: 'acct-a', field: 'total', expected: 323, actual: 1299 },
    ]);
    expect(await fx.rows().findOne({ _id: 'acct-a' })).toMatchObject({ total: 1299, count: 6, version: 6 });
  });

  test('a repair that meets one live update retries with backoff and then succeeds', async () => {
    const fx: TotalsFixture = await smallFixture('race-once', {
      beforeRepair: (entityId, attempt) =>
        attempt === 1 ? fx.live({ id: 'once', entityId, amount: 1, occurredAt: 9000 }) : Promise.resolve(),
    });
    await fx.rows().updateOne({ _id: 'acct-a' }, { $set: { count: 42 } });
    const report = await replayEntity(db, [fx.table()], 'acct-a', { repair: true, backoffMs: 5 });
    expect(report.tables[0]).toMatchObject({ status: 'repaired', attempts: 2, remaining: 0 });
    expect(report.conflicts).toEqual([]);
    expect(await fx.rows().findOne({ _id: 'acct-a' })).toMatchObject({ total: 24, count: 4 });
  });
});

describe('full pass over 10,000 events of 2,000 entities', () => {
  let fx: TotalsFixture;
  let ids: string[];
  const expectedCalls = new Map<string, number>();

  beforeAll(async () => {
    fx = new TotalsFixture(db, {
      name: 'FullPass',
      onExpected: (id) => expectedCalls.set(id, (expectedCalls.get(id) ?? 0) + 1),
    });
    ids = await fx.seed(2000, 5);
    expect(await fx.events().countDocuments()).toBe(10_000);
  });

  test('a clean run in 4 shards reports zero differences and records a finished run', async () => {
    const progress: ReplayProgress[] = [];
    const summary = await replayAll(db, [fx.table()], { shards: 4, onProgress: (p) => progress.push(p) });
    process.stderr.write(
      `[replay] clean full pass: ${summary.checked} entities in ${summary.durationMs}ms = ${Math.round(summary.rate)} entities/s\n`,
    );
    expect(summary).toMatchObject({
      status: 'done',
      shards: 4,
      checked: 2000,
      withDifferences: 0,
      remaining: 0,
      differences: 0,
      differenceList: [],
    });
    expect(progress.at(-1)).toMatchObject({ checked: 2000, total: 2000, shardsDone: 4 });
    const run = await db.collection<ReplayRunDoc>(REPLAY_RUNS_COLLECTION).findOne({ _id: summary.runId });
    expect(run).toMatchObject({ status: 'done', shards: 4, hash: 'fnv1a32+fmix32', tables: ['FullPass'] });
    // Every shard did its share, and the shares add up to all entities.
    const perShard = Object.values(run!.progress).map((c) => c.checked);
    expect(perShard.reduce((a, b) => a + b, 0)).toBe(2000);
    for (const c of perShard) expect(c).toBeGreaterThan(400);
  });

  test('a dirty run finds exactly the tampered entities, and a repair run fixes them', async () => {
    const tampered = [ids[3]!, ids[500]!, ids[999]!, ids[1234]!, ids[1999]!];
    await fx.rows().updateOne({ _id: tampered[0] }, { $inc: { total: 1 } });
    await fx.rows().updateOne({ _id: tampered[1] }, { $set: { count: 0, lastAt: new Date(0) } });
    await fx.rows().deleteOne({ _id: tampered[2] });
    await fx.rows().updateOne({ _id: tampered[3] }, { $set: { lastAt: new Date(1) } });
    await fx.rows().updateOne({ _id: tampered[4] }, { $unset: { total: '' } });

    const dirty = await replayAll(db, [fx.table()], { shards: 4 });
    expect(dirty).toMatchObject({ status: 'done', checked: 2000, withDifferences: 5, remaining: 5 });
    expect(dirty.differences).toBe(6);
    expect([...new Set(dirty.differenceList.map((d) => d.entityId))].sort()).toEqual(tampered);
    expect(dirty.differenceList.find((d) => d.entityId === tampered[4])).toMatchObject({
      field: 'total',
      actual: null,
    });

    const fixed = await replayAll(db, [fx.table()], { shards: 4, repair: true });
    expect(fixed).toMatchObject({
      checked: 2000,
      withDifferences: 5,
      repaired: 5,
      remaining: 0,
      conflicts: 0,
    });
    for (const id of tampered) {
      expect((await replayEntity(db, [fx.table()], id)).differences).toEqual([]);
    }
    const events = await fx.events().find({ entityId: tampered[2] }).toArray();
    expect(await fx.rows().findOne({ _id: tampered[2] })).toMatchObject(reduceTotals(tampered[2]!, events)!);
  });

  test('an interrupted run resumes from its checkpoints and replays each entity exactly once', async () => {
    await fx.rows().updateOne({ _id: ids[1500] }, { $inc: { total: 5 } });
    expectedCalls.clear();
    const runs = db.collection<ReplayRunDoc>(REPLAY_RUNS_COLLECTION);

    // Session 1: stopped from outside after a few batches.
    const stop = new AbortController();
    let calls = 0;
    const first = await replayAll(db, [fx.table()], {
      shards: 4,
      batch: 100,
      concurrency: 2,
      signal: stop.signal,
      onProgress: () => {
        if (++calls === 3) stop.abort();
      },
    });
    expect(first.status).toBe('interrupted');
    expect(first.checked).toBeGreaterThan(0);
    expect(first.checked).toBeLessThan(2000);
    const runId = first.runId;
    expect((await runs.findOne({ _id: runId }))!.status).toBe('running');

    // Session 2: a throwing progress listener stops it too; the error reaches the caller.
    let seen = 0;
    await expect(
      replayAll(db, [fx.table()], {
        runId,
        onProgress: () => {
          if (++seen === 5) throw new Error('listener gave up');
        },
      }),
    ).rejects.toThrow('listener gave up');
    const afterTwo = await runs.findOne({ _id: runId });
    const checkedAfterTwo = Object.values(afterTwo!.progress).reduce((a, c) => a + c.checked, 0);
    expect(checkedAfterTwo).toBeGreaterThan(first.checked);
    expect(afterTwo!.lastError).toBe('listener gave up');

    // A resume must keep the run's shard count.
    await expect(replayAll(db, [fx.table()], { runId, shards: 3 })).rejects.toMatchObject({ code: 'USAGE' });

    // Session 3: runs to the end.
    const last = await replayAll(db, [fx.table()], { runId });
    expect(last).toMatchObject({ status: 'done', resumed: true, checked: 2000, withDifferences: 1 });
    expect(last.checkedThisSession).toBe(2000 - checkedAfterTwo);
    expect(last.differenceList.map((d) => d.entityId)).toEqual([ids[1500]]);
    expect(expectedCalls.size).toBe(2000);
    // Once each by its page's batched read, the one that differs a second time on its own. A shard
    // reads its next page while it diffs the current one: a page read ahead when a session stopped is
    // read again by the resume — at most one page per shard for each of the two stopped sessions.
    const again = [...expectedCalls].filter(([id, n]) => id !== ids[1500] && n !== 1);
    expect(again.every(([, n]) => n === 2)).toBe(true);
    expect(again.length).toBeLessThanOrEqual(2 * 4 * 100);
    expect(expectedCalls.get(ids[1500]!)! - 1).toBeLessThanOrEqual(2);

    // A finished run resumed again does nothing.
    expectedCalls.clear();
    expect(await replayAll(db, [fx.table()], { runId })).toMatchObject({ status: 'done', checked: 2000 });
    expect(expectedCalls.size).toBe(0);
    await expect(replayAll(db, [fx.table()], { runId: 'replay-nope' })).rejects.toMatchObject({
      code: 'USAGE',
    });
  });
});

describe('HTTP', () => {
  let server: ApiServer;
  let base: string;
  let fx: TotalsFixture;

  beforeAll(async () => {
    fx = await smallFixture('http');
    await fx.rows().updateOne({ _id: 'acct-a' }, { $set: { total: 1 } });
    server = createServer({
      log: createLogger('silent'),
      registry: createMetricsRegistry(),
      health: new HealthSource(500),
      routes: [replayRoutes(db, [fx.table()])],
    });
    onCleanup(() => server.close());
    base = `http://127.0.0.1:${await server.listen(0, '127.0.0.1')}`;
  });

  test('GET reports, POST .../repair fixes, a bad id or query is a 400 naming the problem', async () => {
    const get = await fetch(`${base}/replay/acct-a`);
    expect(get.status).toBe(200);
    const report = (await get.json()) as { differences: unknown[]; tables: unknown[] };
    expect(report.differences).toEqual([
      { entityId: 'acct-a', table: 'http', row: 'acct-a', field: 'total', expected: 23, actual: 1 },
    ]);

    const post = await fetch(`${base}/replay/acct-a/repair`, { method: 'POST' });
    expect(post.status).toBe(200);
    expect(await post.json()).toMatchObject({
      repair: true,
      differences: [],
      tables: [{ status: 'repaired' }],
    });
    expect(
      ((await (await fetch(`${base}/replay/acct-a`)).json()) as { differences: unknown[] }).differences,
    ).toEqual([]);

    const long = await fetch(`${base}/replay/${'x'.repeat(600)}`);
    expect(long.status).toBe(400);
    expect(((await long.json()) as { error: { message: string } }).error.message).toMatch(
      /^params\.entityId: /,
    );
    const bad = await fetch(`${base}/replay/acct-a?limit=3`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain('limit');
  });
});

describe('keyflow replay', () => {
  const BIN = path.join(__dirname, '..', '..', 'bin', 'keyflow.js');
  const dbName = uniqueName('kfreplaycli').replace(/-/g, '_');

  beforeAll(() => onCleanup(() => client.db(dbName).dropDatabase()));

  function keyflow(args: string[]) {
    return spawnSync(process.execPath, [BIN, 'replay', ...args], {
      encoding: 'utf8',
      env: { ...process.env, MONGO_DB: dbName, LOG_LEVEL: 'error' },
      timeout: 60_000,
    });
  }

  test('--id on an entity without events reports zero differences as JSON and exits 0', () => {
    // No events are ever archived under this id, so whatever domains the app has, nothing differs.
    const res = keyflow(['--id', uniqueName('no-events'), '--json']);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const report = JSON.parse(res.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ repair: false, found: [], differences: [], conflicts: [] });
    expect(Array.isArray(report.tables)).toBe(true);
    expect((report.tables as { status: string }[]).every((t) => t.status === 'clean')).toBe(true);
  });

  test('--all --json over a database without events finishes with nothing to report', () => {
    const res = keyflow(['--all', '--shards', '2', '--json']);
    expect(res.status).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ status: 'done', shards: 2, checked: 0, differences: 0 });
  });

  test('usage errors exit 2 with one line', () => {
    for (const args of [[], ['--id', 'x', '--all'], ['--all', '--shards', '0'], ['--id', 'x', '--bogus']]) {
      const res = keyflow(args);
      expect(res.status).toBe(2);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect(res.stderr).toMatch(/^keyflow: /);
    }
    expect(keyflow(['--all', '--resume', 'replay-unknown']).status).toBe(2);
  });
});
