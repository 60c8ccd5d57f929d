// The runner's pieces alone, with fakes: the failure strategy decides parking and the letter's status;
// the dead-letter module writes letters and returns their records; the lease manager holds, renews
// and releases; the group adapter keeps a delivery alive, within the ingest budget, checked for
// skipped offsets; the kafkajs batch says when the group moved on with work uncommitted.
import type { EachBatchPayload } from 'kafkajs';
import { ByteBudget } from '../../src/consumers/byte-budget';
import { DeadLetters } from '../../src/consumers/dead-letter';
import type { Runnable } from '../../src/consumers/envelope';
import { strategyFor } from '../../src/consumers/failure';
import { StageGroup, type Delivery } from '../../src/consumers/group';
import { LeaseManager } from '../../src/consumers/lease-manager';
import { ParkedKeys } from '../../src/consumers/parked-keys';
import { RetentionWatch, type SkippedRange } from '../../src/consumers/retention';
import { KeyflowError } from '../../src/errors';
import { EVENTS, Instrumentation } from '../../src/instrumentation';
import { toBatch } from '../../src/kafka/kafkajs-group';
import type { ClientBatch, GroupEvents, GroupMember } from '../../src/kafka/types';
import { createLogger } from '../../src/logger';
import { HEADERS } from '../../src/producers/headers';
import type { StageEvent } from '../../src/topology/types';
import { FakeLetters, message } from './fakes/runner';

const log = createLogger('silent');
const retry = { maxAttempts: 3, baseMs: 1, maxMs: 2 };
const direct = <T>(fn: () => Promise<T>) => fn();

function parkedKeys(store = new FakeLetters()) {
  return new ParkedKeys({ stage: 's', store, infra: direct, log, keepGoing: () => true });
}

function runnable(offset: number, key: string, redriveLetter?: string): Runnable {
  const raw = message(
    offset,
    key,
    { n: offset },
    redriveLetter ? { [HEADERS.REDRIVE_LETTER]: redriveLetter } : {},
  );
  const event = {
    key,
    value: { n: offset },
    eventId: `e${offset}`,
    traceId: 't',
    topic: 'in',
    partition: 0,
    offset: String(offset),
    attempt: 2,
    headers: raw.headers,
    consumedAt: 5,
  } as StageEvent;
  return { raw, key, eventId: `e${offset}`, event, redriveLetter };
}

describe('failure strategy', () => {
  test('park-key parks the key of a dead letter and makes it a parked letter; a keyless one is dead', () => {
    const parked = parkedKeys();
    const s = strategyFor({ onDeadLetter: 'park-key' }, retry, parked);
    expect(s.deadLettered('a')).toBe('parked');
    expect(parked.current.has('a')).toBe(true);
    expect(s.deadLettered(null)).toBe('dead');
  });

  test('skip never parks: its letters are dead and the key goes on', () => {
    const parked = parkedKeys();
    const s = strategyFor({ onDeadLetter: 'skip' }, retry, parked);
    expect(s.deadLettered('a')).toBe('dead');
    expect(parked.current.size).toBe(0);
  });

  test('both retry in place within the stage’s attempts, then dead-letter; a non-retriable failure at once', () => {
    const s = strategyFor({ onDeadLetter: 'skip', maxAttempts: 2 }, retry, parkedKeys());
    const transient = new KeyflowError('HANDLER_TRANSIENT', 'again');
    expect(s.onFailure(transient, 1).action).toBe('retry');
    expect(s.onFailure(transient, 2).action).toBe('dead-letter');
    expect(s.onFailure(new KeyflowError('HANDLER_FAILED', 'bug'), 1).action).toBe('dead-letter');
  });

  test('only park-key asks the store about a delivery’s keys before admitting it', async () => {
    const store = new FakeLetters();
    let asked = 0;
    const ask = store.keysWithOpenLetters.bind(store);
    store.keysWithOpenLetters = async (stage, keys) => (asked++, ask(stage, keys));
    await strategyFor({ onDeadLetter: 'skip' }, retry, parkedKeys(store)).beforeAdmit(['a']);
    expect(asked).toBe(0);
    await strategyFor({ onDeadLetter: 'park-key' }, retry, parkedKeys(store)).beforeAdmit(['a']);
    expect(asked).toBe(1);
  });
});

describe('dead-letter module', () => {
  function module(policy: 'park-key' | 'skip', store = new FakeLetters()) {
    const parked = parkedKeys(store);
    const instrumentation = new Instrumentation();
    const handled: string[] = [];
    instrumentation.on(EVENTS.EVENT_HANDLED, (e) => void handled.push(`${e.offset}:${e.outcome}`));
    const letters = new DeadLetters({
      spec: {
        name: 's',
        onDeadLettered: (e) => [{ topic: 'status', key: e.key, value: { failed: true } }],
      },
      store,
      strategy: strategyFor({ onDeadLetter: policy }, retry, parked),
      parked,
      producer: {
        prepare: async (input, cause, i = 0) => ({
          topic: input.topic,
          key: input.key,
          value: null,
          headers: {},
          eventId: `${cause?.stage}:${cause?.eventId}:${i}`,
        }),
      },
      instrumentation,
      log,
      infra: direct,
      dlqMaxMessageBytes: 1_000_000,
    });
    return { letters, store, parked, handled };
  }

  test('writes each letter with the strategy’s status and returns its dead-letter and close-out records', async () => {
    const { letters, store, handled } = module('park-key');
    const x = letters.doom(runnable(7, 'a'), new KeyflowError('HANDLER_FAILED', 'bug'), 3);
    const [settled] = await letters.write({ topic: 'in', partition: 0 }, [x]);
    expect(settled!.offset).toBe('7');
    expect(settled!.records.map((r) => [r.topic, r.eventId])).toEqual([
      ['s.dlq', 'e7'],
      ['status', 's.dlq:e7:0'],
    ]);
    expect(store.letters.get('s:in:0:7')).toMatchObject({
      status: 'parked',
      code: 'HANDLER_FAILED',
      attempts: 3,
    });
    expect(handled).toEqual(['7:dead-lettered']);
  });

  test('an event waiting behind a letter gets a KEY_PARKED letter and no close-out; under skip it is dead', async () => {
    const { letters, store } = module('skip');
    const [settled] = await letters.write({ topic: 'in', partition: 0 }, [letters.waiting(runnable(8, 'a'))]);
    expect(settled!.records.map((r) => r.topic)).toEqual(['s.dlq']);
    expect(store.letters.get('s:in:0:8')).toMatchObject({ status: 'dead', code: 'KEY_PARKED' });
  });

  test('a re-driven letter is resolved only when asked after the send; a failed resolve is thrown', async () => {
    const { letters, store, parked } = module('park-key');
    await store.record([{ ...(await letterOf(store, letters)), id: 'L' }]);
    store.mark('L', 'redriven');
    await store.resolveLetter('s:in:0:1');
    parked.park('a');
    const after = letters.resolveAfterSend(runnable(9, 'a', 'L'))!;
    expect(store.letters.get('L')!.resolved).toBe(false);
    await after();
    expect(store.letters.get('L')!.resolved).toBe(true);
    expect(parked.current.has('a')).toBe(false);
    expect(letters.resolveAfterSend(runnable(10, 'a'))).toBeUndefined();
    store.resolveLetter = () => Promise.reject(new Error('store down'));
    await expect(letters.resolveAfterSend(runnable(11, 'a', 'L'))!()).rejects.toThrow('store down');
  });
});

/** A letter input as the module writes it, to seed a store. */
async function letterOf(store: FakeLetters, letters: DeadLetters) {
  const x = letters.doom(runnable(1, 'a'), new KeyflowError('HANDLER_FAILED', 'bug'), 1);
  await letters.write({ topic: 'in', partition: 0 }, [x]);
  return store.letters.get('s:in:0:1')!;
}

describe('lease manager', () => {
  test('holds every key’s lease with its token, reports the refused ones, renews, and releases after', async () => {
    const calls: string[] = [];
    let renew: (() => void) | undefined;
    const leases = new LeaseManager({
      leases: {
        acquire: async (key) => {
          calls.push(`acquire ${key}`);
          if (key === 'busy') throw new KeyflowError('LEASE_BUSY', 'held elsewhere');
          return key === 'a' ? 1 : 2;
        },
        release: async (key) => {
          calls.push(`release ${key}`);
          if (key === 'b') throw new Error('store down');
        },
      },
      owner: 'me',
      ttlMs: 30,
      log,
      every: (fn) => ((renew = fn), () => (renew = undefined)),
    });
    const seen = await leases.hold(['a', 'b', 'a', 'busy'], async (held) => {
      renew!();
      return ['a', 'b', 'busy'].map((k) => [
        held.token(k),
        (held.refusal(k) as KeyflowError | undefined)?.code,
      ]);
    });
    expect(seen).toEqual([
      [1, undefined],
      [2, undefined],
      [undefined, 'LEASE_BUSY'],
    ]);
    expect(renew).toBeUndefined();
    expect(calls.filter((c) => c.startsWith('acquire a'))).toHaveLength(2);
    expect(calls.filter((c) => c.startsWith('release')).sort()).toEqual(['release a', 'release b']);
  });
});

describe('delivery seam', () => {
  function member() {
    const m: { deliver?: (b: ClientBatch) => Promise<void>; events?: GroupEvents } = {};
    const factory = (_opts: unknown, events: GroupEvents): GroupMember => {
      m.events = events;
      return { start: async (fn) => void (m.deliver = fn), stop: async () => {} };
    };
    return { m, factory };
  }

  function batch(beats: { n: number }, offsets = [0, 1]): ClientBatch {
    return {
      topic: 'in',
      partition: 0,
      messages: offsets.map((o) => message(o, 'a', { o })),
      lag: 0,
      heartbeat: async () => void beats.n++,
      active: () => true,
      commit: async () => {},
    };
  }

  test('the adapter heartbeats while a delivery is worked on, and holds its bytes in the ingest budget', async () => {
    const { m, factory } = member();
    const ingest = new ByteBudget(1_000_000);
    const beats = { n: 0 };
    const group = new StageGroup({
      member: factory,
      group: { groupId: 'g', topics: ['in'], startAt: 'earliest' },
      events: {},
      heartbeatIntervalMs: 1,
      log,
      ingest,
    });
    let held = 0;
    await group.start(async (d: Delivery) => {
      held = ingest.inUse;
      // Works until the adapter has kept the membership alive twice meanwhile.
      while (beats.n < 2) await new Promise((r) => setTimeout(r, 1));
      expect(d.active()).toBe(true);
    });
    await m.deliver!(batch(beats));
    expect(held).toBeGreaterThan(0);
    expect(ingest.inUse).toBe(0);
    const after = beats.n;
    await new Promise((r) => setTimeout(r, 10));
    expect(beats.n).toBe(after);
  });

  test('a delivery past records that fell out of retention is reported before it is handed on', async () => {
    const { m, factory } = member();
    const reported: SkippedRange[] = [];
    const offsets = {
      committed: async () => new Map([[0, 100n]]),
      bounds: async () => new Map([[0, { low: 250n, high: 300n }]]),
    };
    const group = new StageGroup({
      member: factory,
      group: { groupId: 'g', topics: ['in'], startAt: 'earliest' },
      events: {},
      heartbeatIntervalMs: 1_000,
      log,
      retention: {
        watch: new RetentionWatch({ stage: 's', groupId: 'g', offsets }),
        report: async (r) => void reported.push(r),
      },
    });
    const order: string[] = [];
    await group.start(async () => void order.push(`delivered after ${reported.length}`));
    // The scan before joining found the committed offset below the log start already.
    expect(reported.map((r) => [r.from, r.to])).toEqual([['100', '250']]);
    await m.deliver!(batch({ n: 0 }, [250, 251]));
    expect(order).toEqual(['delivered after 1']);
  });

  test('a kafkajs batch tells the member to rejoin only when the group moved on with work uncommitted', async () => {
    const moved = Object.assign(new Error('rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
    const payload = {
      batch: {
        topic: 't',
        partition: 0,
        messages: [
          { offset: '4', key: null, value: null, headers: {} },
          { offset: '5', key: null, value: null, headers: {} },
        ],
        offsetLag: () => '0',
        lastOffset: () => '5',
      },
      heartbeat: () => Promise.reject(moved),
      isRunning: () => true,
      isStale: () => false,
      resolveOffset: () => undefined,
      commitOffsetsIfNecessary: async () => undefined,
    } as unknown as EachBatchPayload;
    const b = toBatch(payload, 30_000);
    await expect(b.heartbeat()).rejects.toBe(moved);
    expect(b.active()).toBe(false);
    expect(b.moved()).toBe(moved);
    expect(b.allCommitted()).toBe(false);
    await b.commit('5');
    expect(b.allCommitted()).toBe(false);
    await b.commit('6');
    expect(b.allCommitted()).toBe(true);
  });
});
