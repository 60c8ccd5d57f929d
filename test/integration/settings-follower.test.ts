// The tenant-settings follower on each Kafka adapter. It does not drop a record it could not decode for
// a passing reason (the registry unreachable): it decodes it again until it can, and is not caught up
// (so not ready) until that record is applied. It never commits (a group of its own per process), and
// each record is applied once: on @platformatic/kafka its uncommitted batches were delivered again at
// once, forever, so a processor whose settings topic held a record never finished starting (the heap
// filled with 'tenant settings applied').
import { Kafka } from 'kafkajs';
import { KeyflowError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { followTenantSettings, type SettingsFollower } from '../../src/consumers/settings-consumer';
import { kafkajsClient } from '../../src/kafka/kafkajs-client';
import { platformaticClient } from '../../src/kafka/platformatic-client';
import { platformaticBase } from '../../src/kafka/platformatic-options';
import type { KafkaClient } from '../../src/kafka/types';
import { cleanupAll, env, freshTopic, onCleanup, uniqueName, eventually } from '../helpers';

afterAll(cleanupAll);

const adapters: Record<string, () => KafkaClient> = {
  kafkajs: () =>
    kafkajsClient(new Kafka({ clientId: uniqueName('settings'), brokers: env('KAFKA_BROKERS').split(',') })),
  platformatic: () =>
    platformaticClient(
      platformaticBase({ kafkaBrokers: env('KAFKA_BROKERS').split(',') }, uniqueName('settings')),
    ),
};

async function publish(c: KafkaClient, topic: string, key: string, value: object): Promise<void> {
  const sender = c.sender({ sendRetries: 3, requestTimeoutMs: 10_000 });
  onCleanup(() => sender.disconnect());
  await sender.connect();
  await sender.send([{ topic, key, value: Buffer.from(JSON.stringify(value)), headers: {}, eventId: key }]);
}

for (const [name, open] of Object.entries(adapters)) {
  test(`${name}: a record whose decode fails for a passing reason is decoded again, readiness waits for it, and each record applies once`, async () => {
    const topic = await freshTopic('settings', 1, { 'cleanup.policy': 'compact' });
    const kafka = open();
    await publish(kafka, topic, 't1', { maxAmount: 5 });

    const offsets = kafka.offsets();
    onCleanup(() => offsets.close());
    const applied: [string, unknown][] = [];
    const started: { follower?: SettingsFollower } = {};
    let failures = 3;
    const follower = await followTenantSettings(
      kafka,
      {
        apply: (key, value) => {
          applied.push([key, value]);
          // A follower that delivers its records again never yields; stop it so the test fails, not hangs.
          if (applied.length > 20) void started.follower?.close();
        },
      },
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
    started.follower = follower;
    onCleanup(() => follower.close());
    // Ready only once the record is applied with its real value, not as undecodable.
    await follower.ready;
    expect(applied[0]).toEqual(['t1', { maxAmount: 5 }]);
    expect(failures).toBe(-1);
    expect(follower.isCaughtUp()).toBe(true);

    // A later change is followed, and nothing before it is applied again.
    await publish(kafka, topic, 't2', { maxAmount: 7 });
    await eventually(
      async () => (applied.some(([k]) => k === 't2') ? true : undefined),
      20_000,
      't2 applied',
    );
    expect(applied).toEqual([
      ['t1', { maxAmount: 5 }],
      ['t2', { maxAmount: 7 }],
    ]);
  });
}
