// The start-up wait: outages are tried again with growing pauses until one shared deadline; anything
// else stops start-up at once; a wait of 0 keeps the first outage's own error.
import { fromKafkajs } from '../../src/kafka/kafkajs-errors';
import { KeyflowError } from '../../src/errors';
import { isOutage, startupWaiter } from '../../src/runtime/startup-wait';

function clock() {
  let t = 0;
  const slept: number[] = [];
  const warned: unknown[] = [];
  return {
    slept,
    warned,
    opts: {
      now: () => t,
      sleep: async (ms: number) => {
        slept.push(ms);
        t += ms;
      },
      log: { warn: (o: unknown) => warned.push(o), info: () => undefined },
    },
  };
}

const down = () => new KeyflowError('UNREACHABLE', 'schema registry did not answer');

test('an outage is tried again with doubling pauses until the step answers', async () => {
  const c = clock();
  const until = startupWaiter({ waitMs: 60_000, baseMs: 500, maxMs: 4000, ...c.opts });
  let calls = 0;
  const out = await until('the schema registry', async () => {
    if (++calls < 6) throw down();
    return 'ids';
  });
  expect(out).toBe('ids');
  expect(c.slept).toEqual([500, 1000, 2000, 4000, 4000]);
  expect(c.warned).toHaveLength(5);
});

test('the deadline is shared by every step and ends the wait with the outage and how long it waited', async () => {
  const c = clock();
  const until = startupWaiter({ waitMs: 10_000, baseMs: 1000, maxMs: 4000, ...c.opts });
  await until('Kafka', async () => {
    if (c.slept.length < 2) throw down();
  });
  const failure = await until('MongoDB', async () => {
    throw down();
  }).catch((e: unknown) => e as KeyflowError);
  expect(failure).toBeInstanceOf(KeyflowError);
  expect(failure.code).toBe('UNREACHABLE');
  expect(failure.message).toMatch(/^schema registry did not answer \(still down after waiting 10 s;/);
  expect(c.slept.reduce((a, b) => a + b, 0)).toBe(10_000);
});

test('an error that is not an outage stops start-up at once', async () => {
  const c = clock();
  const until = startupWaiter({ waitMs: 60_000, ...c.opts });
  const bad = new KeyflowError('SCHEMA_INCOMPATIBLE', 'subject refused the schema');
  await expect(until('the schema registry', () => Promise.reject(bad))).rejects.toBe(bad);
  expect(c.slept).toEqual([]);
});

test('a wait of 0 fails on the first outage with its own error', async () => {
  const c = clock();
  const until = startupWaiter({ waitMs: 0, ...c.opts });
  const first = down();
  await expect(until('Kafka', () => Promise.reject(first))).rejects.toBe(first);
  expect(c.slept).toEqual([]);
});

test('driver outages count as outages; a bad schema and plain errors do not', () => {
  expect(isOutage(fromKafkajs(Object.assign(new Error('x'), { name: 'KafkaJSConnectionError' })))).toBe(true);
  expect(isOutage(Object.assign(new Error('x'), { name: 'MongoServerSelectionError' }))).toBe(true);
  expect(isOutage(new KeyflowError('TOPOLOGY_INVALID', 'bad avro'))).toBe(false);
  expect(isOutage(new Error('boom'))).toBe(false);
});
