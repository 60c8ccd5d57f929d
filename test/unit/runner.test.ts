// The stage runner's logic with fakes of its ports: per-key order through the batch fold, a failed
// write retried for its key alone, a dead letter parking its key until re-drive releases it, and
// records that cannot be events dead-lettered at once — no broker, no database.
import { CommitWindow } from '../../src/consumers/commit-window';
import { KeyflowError } from '../../src/errors';
import { EVENTS } from '../../src/instrumentation';
import { HEADERS } from '../../src/producers/headers';
import type { ActionStageSpec, BatchStageSpec, Planned } from '../../src/topology/types';
import type { LetterInput } from '../../src/state/dead-letters';
import { FakeLetters, harness, message } from './fakes/runner';
import { flowNames } from '../../src/batches';
import { ingestStage } from '../../src/batches/ingest-stage';

type Ev = { id: string; seq: number };
interface Counter {
  stage: BatchStageSpec<Ev, { n: number }, { key: string; seq: number; n: number }>;
  store: Map<string, number[]>;
  reads: number;
  writes: Planned<Ev, { key: string; seq: number; n: number }>[][];
  failOnce: Set<string>;
  poison: Set<string>;
}

function counter(): Counter {
  const c: Counter = {
    store: new Map(),
    reads: 0,
    writes: [],
    failOnce: new Set(),
    poison: new Set(),
  } as never;
  c.stage = {
    kind: 'batch',
    name: 'count',
    inputs: ['in'],
    outputs: ['out'],
    eventId: (v) => `${(v as Ev).id}#${(v as Ev).seq}`,
    handler: {
      async read(events) {
        c.reads++;
        return new Map(events.map((e) => [e.key, { n: c.store.get(e.key)?.length ?? 0 }]));
      },
      decide: (e, s) => ({
        plan: { key: e.key, seq: e.value.seq, n: s.n + 1 },
        emit: [{ topic: 'out', key: e.key, value: { seq: e.value.seq } }],
        state: { n: s.n + 1 },
      }),
      async write(plans) {
        c.writes.push([...plans]);
        const failed: { index: number; error: unknown }[] = [];
        const stopped = new Set<string>();
        for (const p of plans) {
          if (stopped.has(p.plan.key)) continue;
          const id = p.event.eventId;
          if (c.failOnce.delete(id)) {
            failed.push({ index: p.index, error: new KeyflowError('HANDLER_TRANSIENT', 'try again') });
          } else if (c.poison.has(id)) {
            failed.push({ index: p.index, error: new KeyflowError('HANDLER_FAILED', 'poison') });
          } else {
            c.store.set(p.plan.key, [...(c.store.get(p.plan.key) ?? []), p.plan.seq]);
            continue;
          }
          stopped.add(p.plan.key); // a correct handler writes nothing of the key after its failure
        }
        return { failed };
      },
    },
  };
  return c;
}

const ev = (offset: number, id: string, seq: number) => message(offset, id, { id, seq });

test('a key’s events fold in offset order through one read and one write; the batch commits', async () => {
  const c = counter();
  const h = await harness(c.stage);
  await h.deliver([ev(0, 'a', 0), ev(1, 'b', 0), ev(2, 'a', 1), ev(3, 'b', 1), ev(4, 'a', 2)]);
  expect(c.store.get('a')).toEqual([0, 1, 2]);
  expect(c.store.get('b')).toEqual([0, 1]);
  expect(c.reads).toBe(1);
  expect(c.writes).toHaveLength(1);
  // The fold: each event saw the state its key's previous event left.
  expect(c.writes[0]!.filter((p) => p.plan.key === 'a').map((p) => p.plan.n)).toEqual([1, 2, 3]);
  expect(h.commits).toEqual(['5']);
  expect(h.sent.map((r) => r.topic)).toEqual(['out', 'out', 'out', 'out', 'out']);
});

test('a failed write retries its key from that event on; the other keys are not redone', async () => {
  const c = counter();
  c.failOnce.add('a#1');
  const h = await harness(c.stage);
  const retries: string[] = [];
  h.instrumentation.on(EVENTS.EVENT_RETRY, (r) => void retries.push(`${r.eventId}@${r.attempt}`));
  await h.deliver([ev(0, 'a', 0), ev(1, 'b', 0), ev(2, 'a', 1), ev(3, 'a', 2), ev(4, 'b', 1)]);
  expect(c.store.get('a')).toEqual([0, 1, 2]);
  expect(c.store.get('b')).toEqual([0, 1]);
  expect(retries).toEqual(['a#1@1']);
  expect(c.writes).toHaveLength(2);
  expect(c.writes[1]!.map((p) => `${p.event.eventId}@${p.event.attempt}`)).toEqual(['a#1@2', 'a#2@1']);
  expect(h.commits[h.commits.length - 1]).toBe('5');
});

test('a dead letter parks its key: later events wait as KEY_PARKED until re-drive releases it', async () => {
  const c = counter();
  c.poison.add('a#1');
  const h = await harness(c.stage);
  await h.deliver([ev(0, 'a', 0), ev(1, 'a', 1), ev(2, 'b', 0), ev(3, 'a', 2)]);
  expect(c.store.get('a')).toEqual([0]);
  expect(c.store.get('b')).toEqual([0]);
  const letters = [...h.letters.letters.values()];
  expect(letters.map((l) => [l.eventId, l.code, l.status])).toEqual([
    ['a#1', 'HANDLER_FAILED', 'parked'],
    ['a#2', 'KEY_PARKED', 'parked'],
  ]);
  expect(h.sent.filter((r) => r.topic === 'count.dlq')).toHaveLength(2);
  expect(h.commits[h.commits.length - 1]).toBe('4');
  expect(h.runner.parkedKeys.has('a')).toBe(true);

  // A later event of the parked key waits too; another key does not.
  await h.deliver([ev(4, 'a', 3), ev(5, 'c', 0)]);
  expect(c.store.get('a')).toEqual([0]);
  expect(c.store.get('c')).toEqual([0]);

  // Re-drive, as `keyflow dlq replay` does: the key's letters are marked re-driven, then their
  // records come back, in order, addressed to this stage; the key is released once none is open.
  c.poison.clear();
  const ids = [...h.letters.letters.keys()];
  for (const id of ids) h.letters.letters.get(id)!.status = 'redriven' as never;
  const redrive = (offset: number, seq: number, letter: string) =>
    message(
      offset,
      'a',
      { id: 'a', seq },
      { [HEADERS.REDRIVE_STAGE]: 'count', [HEADERS.REDRIVE_LETTER]: letter },
    );
  await h.deliver([redrive(6, 1, ids[0]!), redrive(7, 2, ids[1]!)]);
  expect(c.store.get('a')).toEqual([0, 1, 2]);
  expect(h.runner.parkedKeys.has('a')).toBe(true); // a#3's letter is still open
  await h.deliver([redrive(8, 3, ids[2]!)]);
  expect(c.store.get('a')).toEqual([0, 1, 2, 3]);
  expect(h.runner.parkedKeys.has('a')).toBe(false);
});

test('a record without a key, without a value, or with bytes that do not decode, is dead-lettered at once', async () => {
  const c = counter();
  const h = await harness(c.stage);
  const bad = { offset: '1', key: Buffer.from('x'), value: Buffer.from('{not json'), headers: {} };
  await h.deliver([message(0, null, { id: 'n', seq: 0 }), bad, ev(2, 'a', 0), message(3, 't', null)]);
  const codes = [...h.letters.letters.values()].map((l) => [l.offset, l.code]);
  expect(codes).toEqual([
    ['0', 'KEY_MISSING'],
    ['1', 'HANDLER_FAILED'],
    ['3', 'VALUE_MISSING'],
  ]);
  expect(c.store.get('a')).toEqual([0]);
  expect(h.commits[h.commits.length - 1]).toBe('4');
});

test('a tombstone on a compacted input is a delete that passes; on any other input it is dead-lettered', async () => {
  const c = counter();
  const compacted = await harness(c.stage, undefined, {}, {}, { compacted: () => true });
  await compacted.deliver([message(0, 'a', null), ev(1, 'a', 0)]);
  expect(compacted.letters.letters.size).toBe(0);
  expect(c.store.get('a')).toEqual([0]);
  expect(compacted.commits[compacted.commits.length - 1]).toBe('2');

  const d = counter();
  const plain = await harness(d.stage, undefined, {}, {}, { compacted: () => false });
  await plain.deliver([message(0, 'b', null), ev(1, 'c', 0)]);
  const [letter] = [...plain.letters.letters.values()];
  expect([letter?.key, letter?.code, letter?.message]).toEqual([
    'b',
    'VALUE_MISSING',
    'a message on in has no value (a tombstone), and the topic is not compacted',
  ]);
  expect(d.store.get('c')).toEqual([0]);
  expect(plain.commits[plain.commits.length - 1]).toBe('2');
});

test('a per-event stage keeps the same order and retry behaviour through its own executor', async () => {
  const applied: string[] = [];
  let failures = 1;
  const spec: ActionStageSpec<Ev, null, Ev> = {
    kind: 'action',
    name: 'each',
    inputs: ['in'],
    outputs: [],
    handler: {
      read: async () => null,
      decide: (e) => ({ plan: e.value, emit: [] }),
      async write(v) {
        if (v.id === 'a' && v.seq === 1 && failures-- > 0)
          throw new KeyflowError('HANDLER_TRANSIENT', 'again');
        applied.push(`${v.id}${v.seq}`);
        return 'applied';
      },
    },
  };
  const h = await harness(spec);
  await h.deliver([ev(0, 'a', 0), ev(1, 'a', 1), ev(2, 'b', 0), ev(3, 'a', 2)]);
  expect(applied.filter((x) => x.startsWith('a'))).toEqual(['a0', 'a1', 'a2']);
  expect(applied).toContain('b0');
  expect(h.commits[h.commits.length - 1]).toBe('4');
});

test('the commit window commits only the completed prefix, across gaps in the offsets', async () => {
  const commits: string[] = [];
  const sent: unknown[] = [];
  const w = new CommitWindow(
    ['5', '7', '8'],
    { send: async (r) => void sent.push(...r), commit: async (n) => void commits.push(n) },
    { maxRecords: 100, intervalMs: 60_000 },
  );
  await w.settle({ offset: '7', records: [] });
  await w.flush();
  expect(commits).toEqual([]);
  await w.settle({ offset: '5', records: [] });
  await w.flush();
  expect(commits).toEqual(['8']);
  await w.settle({
    offset: '8',
    records: [{ topic: 't', key: 'k', value: null, headers: {}, eventId: 'e' }],
  });
  await w.flush();
  expect(commits).toEqual(['8', '9']);
  expect(sent).toHaveLength(1);
  expect(w.allDone).toBe(true);
});

test('a refused commit marks the window lost, and nothing is committed after it', async () => {
  const w = new CommitWindow(
    ['0', '1'],
    {
      send: async () => {},
      commit: async () => {
        throw new Error('rebalance in progress');
      },
    },
    { maxRecords: 100, intervalMs: 60_000 },
  );
  await w.settle({ offset: '0', records: [] });
  await w.flush();
  expect(w.lost).toBe(true);
});

// Re-drive and park state (issue 12): a re-drive never overtakes an earlier open letter, a second copy
// of an applied re-drive applies nothing, and the store's word on a key wins over the memory's.
const redriveOf = (offset: number, seq: number, letter: string) =>
  message(
    offset,
    'a',
    { id: 'a', seq },
    { [HEADERS.REDRIVE_STAGE]: 'count', [HEADERS.REDRIVE_LETTER]: letter },
  );

const seeded = (offset: number, seq: number, status: 'parked' | 'dead'): LetterInput => ({
  id: `count:in:0:${offset}`,
  stage: 'count',
  key: 'a',
  eventId: `a#${seq}`,
  topic: 'in',
  partition: 0,
  offset: String(offset),
  value: Buffer.from(JSON.stringify({ id: 'a', seq })),
  headers: {},
  code: 'HANDLER_FAILED',
  message: `first failure of a#${seq}`,
  attempts: 5,
  firstFailedAt: 0,
  status,
});

test('a re-driven event waits behind an earlier letter that is redriven but not applied, keeping its reason', async () => {
  const c = counter();
  const h = await harness(c.stage);
  // Both letters were marked redriven by a replay that then died: the first one's record never came.
  await h.letters.record([seeded(0, 0, 'parked'), seeded(1, 1, 'parked')]);
  h.letters.mark('count:in:0:0', 'redriven');
  h.letters.mark('count:in:0:1', 'redriven');
  await h.deliver([redriveOf(10, 1, 'count:in:0:1')]);
  expect(c.store.get('a')).toBeUndefined();
  const second = h.letters.letters.get('count:in:0:1')!;
  expect([second.status, second.code, second.message]).toEqual([
    'parked',
    'HANDLER_FAILED',
    'first failure of a#1',
  ]);
  // Both re-driven in order in one batch: the first lets the second follow it.
  await h.deliver([redriveOf(11, 0, 'count:in:0:0'), redriveOf(12, 1, 'count:in:0:1')]);
  expect(c.store.get('a')).toEqual([0, 1]);
  expect(h.runner.parkedKeys.has('a')).toBe(false);
});

test('a second copy of an applied re-drive applies nothing', async () => {
  const c = counter();
  const h = await harness(c.stage);
  await h.letters.record([seeded(0, 0, 'parked')]);
  await h.deliver([redriveOf(10, 0, 'count:in:0:0')]);
  await h.deliver([redriveOf(11, 0, 'count:in:0:0')]);
  expect(c.store.get('a')).toEqual([0]);
  expect(h.commits[h.commits.length - 1]).toBe('12');
});

test('a key whose open letters were discarded is released on its next event', async () => {
  const c = counter();
  c.poison.add('a#1');
  const h = await harness(c.stage);
  await h.deliver([ev(0, 'a', 1)]);
  expect(h.runner.parkedKeys.has('a')).toBe(true);
  await h.letters.resolveLetter('count:in:0:0'); // what `keyflow dlq discard` does to the store
  await h.deliver([ev(1, 'a', 2)]);
  expect(c.store.get('a')).toEqual([2]);
  expect(h.runner.parkedKeys.has('a')).toBe(false);
});

test('a letter another owner wrote after this member loaded its parked keys holds the key’s next event', async () => {
  const c = counter();
  const h = await harness(c.stage);
  await h.letters.record([seeded(0, 0, 'parked')]);
  await h.deliver([ev(1, 'a', 1)]);
  expect(c.store.get('a')).toBeUndefined();
  expect(h.letters.letters.get('count:in:0:1')?.code).toBe('KEY_PARKED');
});

test('a failed load of the parked keys is tried again instead of failing every delivery', async () => {
  const c = counter();
  const letters = new FakeLetters();
  await letters.record([seeded(0, 0, 'parked')]);
  // Not retriable, as a refused cursor on some Mongo-protocol servers: the infra retry throws it.
  let failures = 2;
  const openKeys = letters.openKeys.bind(letters);
  letters.openKeys = async (stage: string) => {
    if (failures-- > 0) throw new KeyflowError('HANDLER_FAILED', 'cursor refused', { retriable: false });
    return openKeys(stage);
  };
  const h = await harness(c.stage, undefined, {}, {}, {}, letters);
  await h.deliver([ev(1, 'a', 1), ev(2, 'b', 0)]);
  expect(failures).toBeLessThan(0);
  expect(c.store.get('a')).toBeUndefined();
  expect(c.store.get('b')).toEqual([0]);
});

test('an ingest event dead-lettered under the skip policy emits an error status, so its batch can finish', async () => {
  const names = flowNames('t');
  const stage = ingestStage(names, async () => {
    throw new Error('the handler is never reached: the store read fails first');
  });
  expect(stage.onDeadLetter).toBe('skip');
  const h = await harness(stage); // its db is no database: every read fails, not retriably
  const value = {
    batchId: 7,
    customerId: 'acme',
    assetId: 'a1',
    origin: 'https://u:p@cdn.example/a.png?sig=1',
  };
  await h.deliver([message(0, 'a1', value, { [HEADERS.OCCURRED_AT]: '1700000000000' })]);

  const letters = [...h.letters.letters.values()];
  expect(letters.map((l) => [l.eventId, l.code, l.status])).toEqual([
    [expect.any(String), 'HANDLER_FAILED', 'dead'],
  ]);
  const status = h.sent.filter((r) => r.topic === names.statusTopic);
  expect(status).toHaveLength(1);
  expect(status[0]!.key).toBe('7:a1');
  expect(JSON.parse(status[0]!.value!.toString())).toEqual({
    batchId: 7,
    customerId: 'acme',
    assetId: 'a1',
    status: 'error',
    error: 'dead-lettered (HANDLER_FAILED); reingest the batch to try again',
    finished: 1700000000000,
  });
  const dlq = h.sent.filter((r) => r.topic === `${names.ingestStage}.dlq`);
  expect(dlq).toHaveLength(1);
  expect(JSON.stringify(dlq[0]!.headers)).not.toMatch(/u:p|sig=1/);
  expect(h.commits[h.commits.length - 1]).toBe('1');
});
