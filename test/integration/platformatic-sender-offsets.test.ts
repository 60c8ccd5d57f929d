// The @platformatic/kafka sender's refusals and the offsets reader, against the real broker: a record
// over the topic's max.message.bytes is RECORD_TOO_LARGE and one for a missing topic TOPIC_UNKNOWN,
// neither retriable, and the sender goes on; a KIP-848 group reads as Stable with its members and the
// partitions each holds,
// and bounds() gives each partition's first offset and high watermark.
import { platformaticClient } from '../../src/kafka/platformatic-client';
import { platformaticBase } from '../../src/kafka/platformatic-options';
import type { KafkaClient } from '../../src/kafka/types';
import type { WireRecord } from '../../src/producers/types';
import { cleanupAll, env, eventually, freshTopic, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

function client(): KafkaClient {
  return platformaticClient(
    platformaticBase({ kafkaBrokers: env('KAFKA_BROKERS').split(',') }, uniqueName('plt-so')),
    'consumer',
  );
}

const record = (topic: string, bytes: number, partition?: number): WireRecord => ({
  topic,
  key: 'k',
  value: Buffer.alloc(bytes, 1),
  headers: {},
  eventId: uniqueName('e'),
  ...(partition !== undefined ? { partition } : {}),
});

test('refusals come back as codes the stage routes on, and the sender goes on', async () => {
  const c = client();
  const topic = await freshTopic('plt-too-large', 1, { 'max.message.bytes': '2000' });
  const sender = c.sender({ sendRetries: 2, requestTimeoutMs: 10_000 });
  onCleanup(() => sender.disconnect());
  await sender.connect();
  await expect(sender.send([record(topic, 10_000)])).rejects.toMatchObject({
    code: 'RECORD_TOO_LARGE',
    retriable: false,
  });
  await expect(sender.send([record(uniqueName('no-such-topic'), 10)])).rejects.toMatchObject({
    code: 'TOPIC_UNKNOWN',
    retriable: false,
  });
  await sender.send([record(topic, 100)]);
  const offsets = c.offsets();
  onCleanup(() => offsets.close());
  expect(await offsets.bounds(topic)).toEqual(new Map([[0, { low: 0n, high: 1n }]]));
});

test('groups() reads a KIP-848 group with its members; bounds() each partition', async () => {
  const c = client();
  const topic = await freshTopic('plt-groups', 2);
  const sender = c.sender({ sendRetries: 2, requestTimeoutMs: 10_000 });
  onCleanup(() => sender.disconnect());
  await sender.send([record(topic, 10, 0), record(topic, 10, 0), record(topic, 10, 1)]);
  const groupId = uniqueName('plt-groups-g');
  for (let i = 0; i < 2; i++) {
    const m = c.member({ groupId, topics: [topic], startAt: 'earliest', fetchWaitMs: 100 });
    onCleanup(() => m.stop());
    await m.start(async (b) => b.commit(b.end!));
  }
  const offsets = c.offsets();
  onCleanup(() => offsets.close());
  const missing = uniqueName('plt-no-group');
  const groups = await eventually(
    async () => {
      const g = await offsets.groups([groupId, missing]);
      const mine = g.get(groupId);
      return mine?.members === 2 && mine.state === 'Stable' && mine.assigned.every((n) => n > 0)
        ? g
        : undefined;
    },
    30_000,
    'the group to be Stable with two members, each holding a partition',
  );
  expect([...groups.get(groupId)!.assigned].sort()).toEqual([1, 1]);
  expect(groups.get(missing)).toEqual({ state: 'Dead', members: 0, assigned: [] });
  expect(await offsets.bounds(topic)).toEqual(
    new Map([
      [0, { low: 0n, high: 2n }],
      [1, { low: 0n, high: 1n }],
    ]),
  );
  await eventually(
    async () => {
      const committed = await offsets.committed(groupId, topic);
      return committed.get(0) === 2n && committed.get(1) === 1n ? true : undefined;
    },
    30_000,
    'both partitions committed',
  );
});
