// Dead letters against the real stack, through the real `keyflow dlq` command: a replay SIGKILLed
// mid-run and run again re-drives every letter once, in order, and the key's later events apply after
// them; `dlq discard` releases a key parked behind bytes no re-drive can decode.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Db } from 'mongodb';
import {
  DEAD_LETTER_INDEXES,
  deadLetters,
  discardLetter,
  listLetters,
  recordLetters,
  resolveLetter,
  sweepExpiredLetters,
  type LetterInput,
} from '../../src/state/dead-letters';
import { ensureIndexes } from '../../src/state/mongo';
import type { KeyedProducer } from '../../src/producers/producer';
import type { Config } from '../../src/config';
import { adminClient, cleanupAll, eventually, freshDb, kafkaClient, onCleanup, uniqueName } from '../helpers';
import { HEADERS } from '../../src/producers/headers';
import {
  COUNTERS,
  counterEvent,
  counterTopology,
  type CounterDoc,
  type CounterEvent,
} from './fixtures/counter';
import { dropAfter, prefix, runProcessor, startOpsRig, testConfig, testProducer } from './harness';

afterAll(cleanupAll);

const BIN = path.join(__dirname, '..', '..', 'bin', 'keyflow.js');

interface Rig {
  config: Config;
  producer: KeyedProducer;
  db: Db;
  input: string;
  stage: string;
}

async function start(
  name: string,
  overrides: Record<string, string> = {},
  before: (stage: string) => Promise<void> = async () => {},
): Promise<Rig> {
  const p = prefix(name);
  const topology = counterTopology(p, { partitions: 1 });
  const config = testConfig({ KEYFLOW_MAX_ATTEMPTS: '2', ...overrides });
  await before(`${p}.counter`);
  const producer = await testProducer(config, topology);
  const processor = await runProcessor(config, topology);
  const db = processor.context.db;
  dropAfter(() => db);
  return { config, producer, db, input: `${p}.in`, stage: `${p}.counter` };
}

function cliEnv(r: Rig): NodeJS.ProcessEnv {
  return { ...process.env, MONGO_DB: r.config.mongoDb, LOG_LEVEL: 'error' };
}

function dlq(r: Rig, args: string[]) {
  return spawnSync(process.execPath, [BIN, 'dlq', ...args], {
    encoding: 'utf8',
    env: cliEnv(r),
    timeout: 60_000,
  });
}

async function send(r: Rig, events: CounterEvent[]): Promise<void> {
  await r.producer.publish(events.map((e) => ({ topic: r.input, key: e.id, value: e, eventId: e.eventId })));
}

async function counter(db: Db, key: string): Promise<CounterDoc | null> {
  return db.collection<CounterDoc>(COUNTERS).findOne({ _id: key });
}

const openLetters = (r: Rig, key: string) =>
  deadLetters(r.db).countDocuments({ stage: r.stage, key, status: { $ne: 'resolved' } });

test('a dlq replay SIGKILLed mid-run and run again re-drives every letter once, in order, before later events', async () => {
  const r = await start('dlqkill');
  const n = 600;
  const healAt = Date.now() + 3_000;
  // x#0 fails for good until healAt; x#1..n wait behind it as KEY_PARKED letters.
  await send(r, [counterEvent('x', 0, { fatalUntil: healAt })]);
  await send(
    r,
    Array.from({ length: n }, (_, i) => counterEvent('x', i + 1)),
  );
  await eventually(async () => ((await openLetters(r, 'x')) === n + 1 ? true : undefined), 60_000, 'letters');
  expect(await counter(r.db, 'x')).toBeNull();
  await eventually(async () => (Date.now() >= healAt ? true : undefined));

  // The first run is killed as soon as the store shows it at work (a letter marked or applied): the
  // replay is then mid-send, or between a send and its mark. Any kill point must be safe.
  const first = spawn(process.execPath, [BIN, 'dlq', 'replay', r.stage], { env: cliEnv(r), stdio: 'ignore' });
  onCleanup(async () => void (first.exitCode === null && first.kill('SIGKILL')));
  const exited = new Promise((res) => first.once('exit', res));
  // Polled tightly (not eventually's 200 ms) so the kill lands close to the first sign of work.
  const atWork = { stage: r.stage, status: { $in: ['redriven' as const, 'resolved' as const] } };
  for (const until = Date.now() + 60_000; (await deadLetters(r.db).countDocuments(atWork)) === 0;) {
    if (Date.now() > until || first.exitCode !== null) throw new Error('the first replay did not start');
    await new Promise((res) => setTimeout(res, 5));
  }
  first.kill('SIGKILL');
  await exited;

  const second = dlq(r, ['replay', r.stage]);
  // stderr carries the run's progress lines only.
  expect(second.stderr.split('\n').filter((l) => l && !l.startsWith('re-drive: '))).toEqual([]);
  expect(second.status).toBe(0);
  await eventually(
    async () => ((await openLetters(r, 'x')) === 0 ? true : undefined),
    40_000,
    'all resolved',
  );
  const applied = await counter(r.db, 'x');
  expect(applied!.seqs).toEqual(Array.from({ length: n + 1 }, (_, i) => i));
  expect(applied!.count).toBe(n + 1);

  // The key is released: a later event applies after every letter, and is not parked.
  await send(r, [counterEvent('x', n + 1)]);
  await eventually(async () => ((await counter(r.db, 'x'))!.count === n + 2 ? true : undefined));
  expect((await counter(r.db, 'x'))!.seqs.slice(-2)).toEqual([n, n + 1]);
  expect(await listLetters(r.db, r.stage, { key: 'x', status: ['parked', 'dead', 'redriven'] })).toEqual([]);
});

test('dlq discard releases a key parked behind undecodable bytes; its later letters then re-drive in order', async () => {
  const r = await start('dlqdiscard');
  const kafka = kafkaClient();
  const raw = kafka.producer();
  await raw.connect();
  onCleanup(() => raw.disconnect());
  await raw.send({ topic: r.input, messages: [{ key: 'z', value: Buffer.from('not avro at all') }] });
  await send(r, [counterEvent('z', 1), counterEvent('z', 2)]);
  await eventually(async () => ((await openLetters(r, 'z')) === 3 ? true : undefined), 60_000, 'letters');

  // Re-drive cannot fix bytes: the key stays parked, its later events still wait.
  expect(dlq(r, ['replay', r.stage]).status).toBe(0);
  await eventually(async () =>
    (await deadLetters(r.db).countDocuments({ stage: r.stage, key: 'z', status: 'parked', redrives: 1 })) ===
    3
      ? true
      : undefined,
  );
  expect(await counter(r.db, 'z')).toBeNull();
  const [bad] = await listLetters(r.db, r.stage, { key: 'z', limit: 1 });
  expect(bad!.code).toBe('DECODE_FAILED');

  const refused = dlq(r, ['discard', r.stage, '--key', 'z']);
  expect(refused.status).not.toBe(0);
  expect(refused.stderr).toMatch(/--reason/);
  const discard = dlq(r, ['discard', r.stage, '--key', 'z', '--reason', 'bytes from a broken client']);
  expect(discard.stderr).toBe('');
  expect(discard.stdout).toContain(`discarded ${bad!._id}`);
  const gone = await deadLetters(r.db).findOne({ _id: bad!._id });
  expect(gone!.status).toBe('resolved');
  expect(gone!.discarded).toMatchObject({ reason: 'bytes from a broken client' });
  expect(gone!.discarded!.by).toMatch(/^cli:./);
  expect(gone!.expiresAt!.getTime()).toBeGreaterThan(Date.now());

  expect(dlq(r, ['replay', r.stage]).status).toBe(0);
  await eventually(
    async () => ((await counter(r.db, 'z'))?.count === 2 ? true : undefined),
    60_000,
    'z applied',
  );
  expect((await counter(r.db, 'z'))!.seqs).toEqual([1, 2]);
  await eventually(async () => ((await openLetters(r, 'z')) === 0 ? true : undefined));
  await send(r, [counterEvent('z', 3)]);
  await eventually(async () => ((await counter(r.db, 'z'))?.count === 3 ? true : undefined));
});

test('a dead letter too large for its topic goes header-only and the partition goes on', async () => {
  // The stage's dead-letter topic exists already with a small max.message.bytes.
  const r = await start('dlqbig', { KEYFLOW_DLQ_MAX_MESSAGE_BYTES: '4096' }, async (stage) => {
    const admin = await adminClient();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic: `${stage}.dlq`,
          numPartitions: 1,
          replicationFactor: 1,
          configEntries: [{ name: 'max.message.bytes', value: '4096' }],
        },
      ],
    });
    onCleanup(() => admin.deleteTopics({ topics: [`${stage}.dlq`] }));
  });
  const big = counterEvent('big', 0, { fatalUntil: Date.now() + 3_600_000 });
  big.eventId = `big#0-${'x'.repeat(10_000)}`;
  await send(r, [big, counterEvent('small', 0)]);
  await eventually(async () => ((await counter(r.db, 'small'))?.count === 1 ? true : undefined), 60_000);

  const consumer = kafkaClient().consumer({ groupId: uniqueName('dlqbig-read') });
  await consumer.connect();
  onCleanup(() => consumer.disconnect());
  await consumer.subscribe({ topic: `${r.stage}.dlq`, fromBeginning: true });
  const seen: { value: Buffer | null; headers: Record<string, string> }[] = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
      seen.push({ value: message.value, headers });
    },
  });
  const record = await eventually(async () => seen[0], 60_000, 'the dead-letter record');
  expect(record.value).toBeNull();
  const [letter] = await listLetters(r.db, r.stage, { key: 'big' });
  expect(record.headers[HEADERS.DLQ_STORED]).toBe(`keyflow_dead_letters/${letter!._id}`);
  expect(record.headers[HEADERS.DLQ_CODE]).toBe('HANDLER_FAILED');
  expect(letter!.value!.length()).toBeGreaterThan(10_000);
  // The partition went on: the letter's offset and the next event's are committed.
  const admin = await adminClient();
  await eventually(async () => {
    const [offsets] = await admin.fetchOffsets({ groupId: r.stage, topics: [r.input] });
    return offsets!.partitions[0]!.offset === '2' ? true : undefined;
  });
});

test('the ops discard action resolves a letter as the admin, and refuses bad input with a 4xx', async () => {
  const rig = await startOpsRig('dlqops', 60_000);
  const { db } = rig.processor.context;
  await rig.send([counterEvent('o', 0, { fatalUntil: Date.now() + 3_600_000 })]);
  const [letter] = await eventually(async () => {
    const l = await listLetters(db, rig.stage, { key: 'o' });
    return l.length === 1 ? l : undefined;
  }, 60_000);
  const post = (body: unknown) =>
    fetch(`${rig.admin}/ops/api/dead-letters/${encodeURIComponent(rig.stage)}/discard`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...rig.auth },
      body: JSON.stringify(body),
    });
  const noReason = await post({ letter: letter!._id });
  expect(noReason.status).toBe(400);
  expect(JSON.stringify(await noReason.json())).toMatch(/reason/);
  const both = await post({ letter: letter!._id, key: 'o', reason: 'x' });
  expect(both.status).toBe(400);
  const unknown = await post({ letter: 'no-such-letter', reason: 'x' });
  expect(unknown.status).toBe(404);

  const ok = await post({ letter: letter!._id, reason: 'handled by hand' });
  expect(ok.status).toBe(200);
  const stored = await deadLetters(db).findOne({ _id: letter!._id });
  expect(stored!.status).toBe('resolved');
  expect(stored!.discarded).toMatchObject({ by: 'ops:admin', reason: 'handled by hand' });
  expect((await post({ letter: letter!._id, reason: 'again' })).status).toBe(404);
});

test('resolved letters past their retention are swept; open ones and unexpired ones stay', async () => {
  const { db } = await freshDb('kfdlqsweep');
  await ensureIndexes(db, [DEAD_LETTER_INDEXES]);
  const input = (offset: number, key: string): LetterInput => ({
    id: `s:in:0:${offset}`,
    stage: 's',
    key,
    eventId: `e${offset}`,
    topic: 'in',
    partition: 0,
    offset: String(offset),
    value: Buffer.from('x'),
    headers: {},
    code: 'HANDLER_FAILED',
    message: 'm',
    attempts: 1,
    firstFailedAt: 0,
    status: 'parked',
  });
  await recordLetters(db, [input(0, 'a'), input(1, 'b'), input(2, 'c')]);
  await discardLetter(db, { stage: 's', target: { key: 'a' }, by: 'test', reason: 'r', retentionMs: 0 });
  await resolveLetter(db, 's:in:0:1', 3_600_000);
  const indexes = await deadLetters(db).indexes();
  expect(indexes.find((i) => i.name === 'expires_at_ttl')?.expireAfterSeconds).toBe(0);
  expect(await sweepExpiredLetters(db, new Date(Date.now() + 1000))).toBe(1);
  expect((await deadLetters(db).find().toArray()).map((l) => [l._id, l.status])).toEqual([
    ['s:in:0:1', 'resolved'],
    ['s:in:0:2', 'parked'],
  ]);
});
