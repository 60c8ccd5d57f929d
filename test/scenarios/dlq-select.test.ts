// Dead letters selected by error code and time, against the real stack and through the real `keyflow dlq`:
// a selection lists, re-drives and discards only what it names; a selected letter whose key has an earlier
// open letter left out is reported as held and stays parked (the runner would only park it again); and
// once the letters ahead are dealt with, the same selection re-drives the key's letters in order.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Db } from 'mongodb';
import {
  deadLetters,
  recordLetters,
  resolveLetter,
  type LetterInput,
  type LetterStatus,
} from '../../src/state/dead-letters';
import { hourOf, LETTER_INDEX } from '../../src/state/letter-index';
import { discardSelected, selectLetters, sweepIndexedLetters } from '../../src/state/letter-selection';
import type { KeyedProducer } from '../../src/producers/producer';
import type { Config } from '../../src/config';
import { cleanupAll, eventually, freshDb, kafkaClient, onCleanup } from '../helpers';
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
const HOUR = 3_600_000;

interface Rig {
  config: Config;
  producer: KeyedProducer;
  db: Db;
  input: string;
  stage: string;
}

async function start(name: string): Promise<Rig> {
  const p = prefix(name);
  const topology = counterTopology(p, { partitions: 1 });
  const config = testConfig({ KEYFLOW_MAX_ATTEMPTS: '2' });
  const producer = await testProducer(config, topology);
  const processor = await runProcessor(config, topology);
  const db = processor.context.db;
  dropAfter(() => db);
  return { config, producer, db, input: `${p}.in`, stage: `${p}.counter` };
}

function dlq(r: Rig, args: string[]) {
  const res = spawnSync(process.execPath, [BIN, 'dlq', ...args], {
    encoding: 'utf8',
    env: { ...process.env, MONGO_DB: r.config.mongoDb, LOG_LEVEL: 'error' },
    timeout: 60_000,
  });
  // Progress lines go to stderr on long runs; anything else there is a failure.
  const errors = res.stderr.split('\n').filter((l) => l && !/^(re-drive|discard): /.test(l));
  return { ...res, errors };
}

/** The event ids `dlq list` printed, in its order. */
function listed(out: string): string[] {
  return [...out.matchAll(/ event=(\S+) /g)].map((m) => m[1]!);
}

async function send(r: Rig, events: CounterEvent[]): Promise<void> {
  await r.producer.publish(events.map((e) => ({ topic: r.input, key: e.id, value: e, eventId: e.eventId })));
}

const counter = (db: Db, key: string) => db.collection<CounterDoc>(COUNTERS).findOne({ _id: key });
const letterCount = (r: Rig, filter: Record<string, unknown>) =>
  deadLetters(r.db).countDocuments({ stage: r.stage, ...filter });
const FOREVER = () => Date.now() + 3_600_000;

test('dlq list, replay and discard by code and time; letters held behind an earlier letter are reported, then follow in order', async () => {
  const r = await start('dlqsel');
  const raw = kafkaClient().producer();
  await raw.connect();
  onCleanup(() => raw.disconnect());
  // x#0 fails for good, x#1..3 wait behind it; y's first record is undecodable, y#1 waits behind it.
  await send(r, [counterEvent('x', 0, { fatalUntil: FOREVER() })]);
  await send(
    r,
    [1, 2, 3].map((i) => counterEvent('x', i)),
  );
  await raw.send({ topic: r.input, messages: [{ key: 'y', value: Buffer.from('not avro') }] });
  await send(r, [counterEvent('y', 1)]);
  await eventually(async () => ((await letterCount(r, {})) === 6 ? true : undefined), 60_000, 'letters');
  const newest = await deadLetters(r.db).find({ stage: r.stage }).sort({ deadAt: -1 }).limit(1).next();
  const between = new Date(newest!.deadAt.getTime() + 1);
  await eventually(async () => (Date.now() > between.getTime() ? true : undefined));
  await send(r, [counterEvent('w', 0, { fatalUntil: FOREVER() })]);
  await eventually(async () => ((await letterCount(r, { key: 'w' })) === 1 ? true : undefined), 60_000);

  // Selections list only what they name, in the original order.
  const parked = dlq(r, ['list', r.stage, '--code', 'KEY_PARKED']);
  expect(parked.errors).toEqual([]);
  expect(listed(parked.stdout)).toEqual(['x#1', 'x#2', 'x#3', 'y#1']);
  expect(listed(dlq(r, ['list', r.stage, '--since', between.toISOString()]).stdout)).toEqual(['w#0']);
  const early = dlq(r, ['list', r.stage, '--until', between.toISOString(), '--code', 'HANDLER_FAILED']);
  expect(listed(early.stdout)).toEqual(['x#0']);
  const ofY = dlq(r, [
    'list',
    r.stage,
    '--key',
    'y',
    '--code',
    'DECODE_FAILED,HANDLER_FAILED',
    '--code',
    'KEY_PARKED',
  ]);
  expect(listed(ofY.stdout)).toHaveLength(2);
  expect(listed(ofY.stdout)[1]).toBe('y#1');

  // Re-driving the waiting letters alone would only park them again: each is held, none is sent.
  const held = dlq(r, ['replay', r.stage, '--code', 'KEY_PARKED']);
  expect(held.errors).toEqual([]);
  expect(held.status).toBe(0);
  expect(held.stdout).toContain(`re-drove 0 letter(s) of ${r.stage}`);
  const heldLines = held.stdout
    .split('\n')
    .filter((l) => l.includes('held behind an earlier letter of its key'));
  expect(heldLines).toHaveLength(5); // four letters, and the summary
  const x0 = (await deadLetters(r.db).findOne({ stage: r.stage, eventId: 'x#0' }))!;
  expect(heldLines.filter((l) => l.includes(`, ${x0._id} (HANDLER_FAILED, parked)`))).toHaveLength(3);
  expect(heldLines.some((l) => l.includes('(key=y)') && l.includes('(DECODE_FAILED, parked)'))).toBe(true);
  expect(await letterCount(r, { code: 'KEY_PARKED', status: 'parked', redrives: 0 })).toBe(4);

  // Discard by code (and by key and code): the keys' waiting letters are no longer held.
  const noReason = dlq(r, ['discard', r.stage, '--code', 'DECODE_FAILED']);
  expect(noReason.status).not.toBe(0);
  const gaveUp = dlq(r, [
    'discard',
    r.stage,
    '--code',
    'DECODE_FAILED',
    '--reason',
    'bytes from a broken client',
  ]);
  expect(gaveUp.errors).toEqual([]);
  expect(gaveUp.stdout).toContain(`discarded 1 letter(s) of ${r.stage} (code DECODE_FAILED)`);
  dlq(r, ['discard', r.stage, '--key', 'x', '--code', 'HANDLER_FAILED', '--reason', 'fixed by hand']);
  expect((await deadLetters(r.db).findOne({ _id: x0._id }))!.discarded?.reason).toBe('fixed by hand');
  expect(await letterCount(r, { key: 'w', status: 'parked' })).toBe(1);

  const go = dlq(r, ['replay', r.stage, '--code', 'KEY_PARKED']);
  expect(go.errors).toEqual([]);
  expect(go.stdout).toContain(`re-drove 4 letter(s) of ${r.stage} (code KEY_PARKED)`);
  expect(go.stdout).not.toContain('held');
  await eventually(async () => ((await counter(r.db, 'x'))?.count === 3 ? true : undefined), 60_000, 'x');
  expect((await counter(r.db, 'x'))!.seqs).toEqual([1, 2, 3]);
  await eventually(async () => ((await counter(r.db, 'y'))?.count === 1 ? true : undefined), 60_000, 'y');
  await eventually(async () =>
    (await letterCount(r, { key: { $in: ['x', 'y'] }, status: { $ne: 'resolved' } })) === 0
      ? true
      : undefined,
  );

  // A time range re-drives w#0 alone; it fails again, is parked again, and still lists by its new time.
  const w0 = (await deadLetters(r.db).findOne({ stage: r.stage, key: 'w' }))!;
  const late = dlq(r, ['replay', r.stage, '--since', between.toISOString()]);
  expect(late.stdout).toContain('re-drove 1 letter(s)');
  await eventually(async () =>
    (await letterCount(r, { key: 'w', status: 'parked', deadAt: { $gt: w0.deadAt } })) === 1
      ? true
      : undefined,
  );
  expect(await letterCount(r, { status: { $ne: 'resolved' } })).toBe(1);
  expect(
    listed(dlq(r, ['list', r.stage, '--since', between.toISOString(), '--status', 'parked']).stdout),
  ).toEqual(['w#0']);
});

test('a bad code or time is refused in one line that names the problem', async () => {
  const r = { config: testConfig() } as Rig;
  const stage = 'any-stage';
  const code = dlq(r, ['list', stage, '--code', 'HANDLER_FAILED,NOPE']);
  expect(code.status).not.toBe(0);
  expect(code.errors).toHaveLength(1);
  expect(code.errors[0]).toMatch(/--code NOPE is not an error code; known: .*\bHANDLER_FAILED\b/);
  expect(code.errors[0]).toMatch(/known: .*\bKEY_PARKED\b/);
  const since = dlq(r, ['replay', stage, '--since', 'yesterday']);
  expect(since.errors).toHaveLength(1);
  expect(since.errors[0]).toMatch(/--since takes an ISO time .* not "yesterday"/);
  const until = dlq(r, ['discard', stage, '--since', '1h', '--until', '2h', '--reason', 'r']);
  expect(until.errors).toHaveLength(1);
  expect(until.errors[0]).toMatch(/--until .* must be after --since/);
  const both = dlq(r, ['discard', stage, '--letter', 'l', '--code', 'KEY_PARKED', '--reason', 'r']);
  expect(both.errors[0]).toMatch(/exactly one of --letter ID, --key K, or a selection/);
});

test('/ops lists letters by code and time range, and refuses a bad code or time with a 400 naming it', async () => {
  const rig = await startOpsRig('dlqselops', 60_000);
  await rig.send([counterEvent('o', 0, { fatalUntil: FOREVER() })]);
  const { db } = rig.processor.context;
  const letter = await eventually(
    async () => (await deadLetters(db).findOne({ stage: rig.stage })) ?? undefined,
  );
  const get = (query: string) =>
    fetch(`${rig.admin}/ops/api/dead-letters?stage=${encodeURIComponent(rig.stage)}&${query}`, {
      headers: rig.auth,
    });
  const ids = async (query: string) => {
    const res = await get(query);
    expect(res.status).toBe(200);
    return ((await res.json()) as { letters: { id: string }[] }).letters.map((l) => l.id);
  };
  const at = letter.deadAt.getTime();
  expect(await ids('code=HANDLER_FAILED')).toEqual([letter._id]);
  expect(await ids('code=KEY_PARKED,DECODE_FAILED')).toEqual([]);
  expect(await ids(`since=${new Date(at).toISOString()}&until=${new Date(at + 1).toISOString()}`)).toEqual([
    letter._id,
  ]);
  expect(await ids(`since=${new Date(at + 1).toISOString()}`)).toEqual([]);
  expect(await ids(`key=o&code=HANDLER_FAILED&until=${new Date(at).toISOString()}`)).toEqual([]);

  const refused = async (query: string, pattern: RegExp) => {
    const res = await get(query);
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toMatch(pattern);
  };
  await refused('code=NOPE', /code.*NOPE.*is not an error code; known: .*HANDLER_FAILED/);
  await refused('since=yesterday', /since.*must be an ISO time/);
  await refused(
    `since=${new Date(at).toISOString()}&until=${new Date(at).toISOString()}`,
    /until must be after since/,
  );
});

describe('the code-and-time index (store level)', () => {
  const input = (offset: number, key: string, code: string): LetterInput => ({
    id: `s:in:0:${offset}`,
    stage: 's',
    key,
    eventId: `e${offset}`,
    topic: 'in',
    partition: 0,
    offset: String(offset),
    value: Buffer.from('x'),
    headers: {},
    code,
    message: 'm',
    attempts: 1,
    firstFailedAt: 0,
    status: 'parked',
  });
  const ids = async (
    db: Db,
    sel: Parameters<typeof selectLetters>[2],
    status: LetterStatus[] = ['parked'],
  ) => {
    const out: string[] = [];
    for await (const page of selectLetters(db, 's', sel, { status, pageSize: 2 }))
      out.push(...page.map((l) => l._id));
    return out;
  };

  test('a letter that dies again is found under its new code only, in order, and discarded by selection', async () => {
    const { db } = await freshDb('kfdlqidx');
    await recordLetters(db, [input(2, 'a', 'HANDLER_FAILED'), input(1, 'a', 'HANDLER_FAILED')]);
    await recordLetters(db, [input(3, 'b', 'VALIDATION_FAILED'), input(0, 'c', 'HANDLER_FAILED')]);
    await recordLetters(db, [input(1, 'a', 'VALIDATION_FAILED')]);
    expect(await ids(db, { codes: ['HANDLER_FAILED'] })).toEqual(['s:in:0:0', 's:in:0:2']);
    expect(await ids(db, { codes: ['VALIDATION_FAILED'] })).toEqual(['s:in:0:1', 's:in:0:3']);
    expect(await ids(db, { codes: ['VALIDATION_FAILED'], key: 'a' })).toEqual(['s:in:0:1']);
    expect(await ids(db, { until: new Date(0) })).toEqual([]);
    const gone = await discardSelected(
      db,
      's',
      { codes: ['VALIDATION_FAILED'] },
      { by: 't', reason: 'r', retentionMs: HOUR },
    );
    expect(gone.map((l) => l._id)).toEqual(['s:in:0:1', 's:in:0:3']);
    expect(await ids(db, { codes: ['VALIDATION_FAILED'] })).toEqual([]);
    expect(await ids(db, { codes: ['VALIDATION_FAILED'] }, ['resolved'])).toEqual(['s:in:0:1', 's:in:0:3']);
  });

  test('the sweep drops an hour whose letters are all resolved and keeps one with an open letter', async () => {
    const { db } = await freshDb('kfdlqidxsweep');
    await recordLetters(db, [input(0, 'a', 'HANDLER_FAILED'), input(1, 'b', 'HANDLER_FAILED')]);
    await resolveLetter(db, 's:in:0:0', HOUR);
    const index = db.collection<{ _id: string }>(LETTER_INDEX);
    const hour = hourOf((await deadLetters(db).findOne({ _id: 's:in:0:1' }))!.deadAt);
    const later = Date.now() + 2 * HOUR;
    // One letter still open: the hour stays, and the letters stay reachable.
    await sweepIndexedLetters(db, HOUR, later);
    expect(await index.countDocuments({ _id: `h|s|${hour}` } as never)).toBe(1);
    await resolveLetter(db, 's:in:0:1', HOUR);
    expect(await sweepIndexedLetters(db, HOUR, later)).toBe(1);
    expect((await index.find().toArray()).map((d) => d._id).sort()).toEqual(['stages', 's|s'].sort());
    expect(await ids(db, { codes: ['HANDLER_FAILED'] }, ['resolved'])).toEqual([]);
  });
});
