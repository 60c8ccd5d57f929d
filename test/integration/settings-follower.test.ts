// The tenant-settings follower does not drop a record it could not decode for a passing reason (the
// registry unreachable): it decodes it again until it can, and is not caught up (so not ready) until
// that record is applied. Before, the record was applied as undecodable and the tenant kept stale
// settings until its next change.
import { Kafka } from 'kafkajs';
import { KeyflowError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { followTenantSettings } from '../../src/consumers/settings-consumer';
import { cleanupAll, env, freshTopic, onCleanup, uniqueName } from '../helpers';
import { kafkajsClient, kafkajsOffsets } from '../../src/kafka/kafkajs-client';

afterAll(cleanupAll);

test('a record whose decode fails for a passing reason is decoded again, and readiness waits for it', async () => {
  const topic = await freshTopic('settings', 1, { 'cleanup.policy': 'compact' });
  const kafka = new Kafka({ clientId: uniqueName('settings'), brokers: env('KAFKA_BROKERS').split(',') });
  const producer = kafka.producer();
  await producer.connect();
  onCleanup(() => producer.disconnect());
  await producer.send({ topic, messages: [{ key: 't1', value: JSON.stringify({ maxAmount: 5 }) }] });

  const offsets = kafkajsOffsets(kafka);
  onCleanup(() => offsets.close());
  const applied: [string, unknown][] = [];
  let failures = 3;
  const follower = await followTenantSettings(
    kafkajsClient(kafka),
    { apply: (key, value) => void applied.push([key, value]) },
    {
      topic,
      log: createLogger('silent'),
      bounds: (t) => offsets.bounds(t),
      retry: { maxAttempts: Infinity, baseMs: 20, maxMs: 50 },
      decode: (bytes) => {
        if (failures-- > 0) {
          throw new KeyflowError('UNREACHABLE', 'schema registry did not answer');
        }
        return JSON.parse(bytes.toString('utf8')) as unknown;
      },
    },
  );
  onCleanup(() => follower.close());
  // Ready only once the record is applied with its real value, not as undecodable.
  await follower.ready;
  expect(applied).toEqual([['t1', { maxAmount: 5 }]]);
  expect(failures).toBe(-1);
  expect(follower.isCaughtUp()).toBe(true);
});
