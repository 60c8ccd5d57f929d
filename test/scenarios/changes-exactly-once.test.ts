// In exactly-once mode, three SIGKILLs of the processor mid-stream leave each change topic a faithful
// changelog: read with read_committed, each distinct event's change is there exactly once, each row's
// changes chain before → after in partition order, and each row's last change equals the table.
// The processor is a real child process (the fault suite's `changes-sigkill`, run by the CLI, which
// keeps its arena); the topics are then checked with `changes verify`'s own reader and rule. CI size:
// 2,500 conversions and 300 appointments with 5% upstream re-sends (about 150 s on a loaded 2-core
// box); the fault suite's full run of the same scenario has 20,000 conversions and 2,000 appointments.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { verifyTopic } from '../../src/changes/kafkajs-read';
import { PROBLEMS, type VerifyReport } from '../../src/changes/verify';
import { CHANGES_TOPIC as CONVERSION_CHANGES } from '../../src/conversions/schemas';
import { rowsOf } from '../../src/conversions/store';
import { changes as appointmentChanges } from '../../src/appointments/tables';
import type { FaultFigures } from '../../src/faults/figures';
import { adminClient, cleanupAll, env, eventually, kafkaClient, onCleanup } from '../helpers';

afterAll(cleanupAll);

const BIN = path.join(__dirname, '..', '..', 'bin', 'keyflow.js');

interface Kept {
  code: number | null;
  out: string;
  row: FaultFigures;
  prefix: string;
  dbName: string;
}

function runScenario(dir: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        BIN,
        'faults',
        'changes-sigkill',
        '--quick',
        '--keep',
        '--guarantee',
        'exactly-once',
        '--results',
        dir,
      ],
      { env: { ...process.env, LOG_LEVEL: 'error' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += String(d)));
    child.stderr.on('data', (d: Buffer) => (out += String(d)));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

/** Removes the arena the scenario kept: its topics, its groups once their killed members expired, its database. */
async function removeKept(prefix: string, db: ReturnType<MongoClient['db']>): Promise<void> {
  const admin = await adminClient();
  // Topics start with the prefix; group ids carry it after the application id.
  const mine = (n: string) => n.includes(`${prefix}.`);
  const topics = (await admin.listTopics()).filter(mine);
  if (topics.length) await admin.deleteTopics({ topics, timeout: 30_000 });
  await eventually(
    async () => {
      const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter(mine);
      if (groups.length === 0) return true;
      await admin.deleteGroups(groups).catch(() => undefined);
      return undefined;
    },
    30_000,
    'the kept groups deleted',
  );
  await db.dropDatabase();
}

let kept: Kept;
let client: MongoClient;

beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-eos-'));
  const { code, out } = await runScenario(dir);
  const where = /kept the arena for inspection: database (\S+), topics and groups (\S+)\.\*/.exec(out);
  if (!where) throw new Error(`the scenario kept no arena:\n${out}`);
  client = new MongoClient(env('MONGO_URL'));
  await client.connect();
  const db = client.db(where[1]!);
  onCleanup(async () => {
    await removeKept(where[2]!, db);
    await client.close();
  });
  const [row] = (
    JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8')) as { scenarios: FaultFigures[] }
  ).scenarios;
  kept = { code, out, row: row!, prefix: where[2]!, dbName: where[1]! };
}, 480_000);

async function verify(topic: string): Promise<VerifyReport> {
  const { report, shortOf } = await verifyTopic({
    kafka: kafkaClient(),
    brokers: env('KAFKA_BROKERS').split(','),
    registryUrl: env('SCHEMA_REGISTRY_URL'),
    db: client.db(kept.dbName),
    topic: `${kept.prefix}.${topic}`,
  });
  // Every partition read to its end: commit markers and aborted records are passed, not waited on.
  expect(shortOf).toEqual([]);
  return report;
}

const NO_PROBLEM = Object.fromEntries(PROBLEMS.map((p) => [p, 0]));

test('three SIGKILLs land mid-stream and the tables come out exact, with nothing dead-lettered', () => {
  expect(kept.row).toMatchObject({
    scenario: 'changes-sigkill',
    lost: 0,
    duplicates: 0,
    wrong: 0,
    stalled: 0,
    deadLettered: 0,
    restarts: 0,
    failedChecks: [],
  });
  expect(kept.out).toMatch(/SIGKILLs with \d+, \d+, \d+ of \d+ effects applied/);
});

test(`${CONVERSION_CHANGES}: each conversion's change exactly once, chained, each row ending at the table`, async () => {
  const r = await verify(CONVERSION_CHANGES);
  // One change per counted conversion: the rows' counts summed, re-sends counted once.
  const [sum] = await rowsOf(client.db(kept.dbName))
    .aggregate<{ n: number }>([{ $group: { _id: null, n: { $sum: '$count' } } }])
    .toArray();
  expect(sum!.n).toBe(2500);
  expect({ ...r, examples: undefined }).toMatchObject({
    changes: 2500,
    distinctEvents: 2500,
    missing: 0,
    ...NO_PROBLEM,
  });
});

test("changes.appointments.v1: each appointment event's change exactly once, chained, each row ending at the table", async () => {
  const r = await verify('changes.appointments.v1');
  const events = await appointmentChanges(client.db(kept.dbName)).countDocuments({});
  expect(events).toBeGreaterThan(300);
  expect({ ...r, examples: undefined }).toMatchObject({
    changes: events,
    distinctEvents: events,
    rows: 300,
    missing: 0,
    ...NO_PROBLEM,
  });
});

test('the suite itself judged the change topics: no duplicate and no missing change, and a pass', () => {
  expect(kept.row).toMatchObject({ duplicateChanges: 0, missingChanges: 0 });
  expect({ code: kept.code, pass: kept.out.includes('changes-sigkill: PASS') }).toEqual({
    code: 0,
    pass: true,
  });
});
