// A real broker's refusals reach the stage as codes it can route on, in bounded time: a record over
// the topic's max.message.bytes is RECORD_TOO_LARGE and a topic that does not exist is TOPIC_UNKNOWN,
// neither retriable — before, both came back as a retriable PRODUCE_FAILED (or never came back), and
// the stage retried the same batch for ever.
import { KeyedProducer } from '../../src/producers/producer';
import type { WireRecord } from '../../src/producers/types';
import { cleanupAll, freshTopic, kafkaClient, onCleanup, uniqueName } from '../helpers';
import { kafkajsClient } from '../../src/kafka/kafkajs-client';

afterAll(cleanupAll);

function producer(): KeyedProducer {
  const p = new KeyedProducer(
    kafkajsClient(kafkaClient()),
    { encode: async () => Buffer.alloc(0) },
    { sendRetries: 2 },
  );
  onCleanup(() => p.close());
  return p;
}

const record = (topic: string, bytes: number): WireRecord => ({
  topic,
  key: 'k',
  value: Buffer.alloc(bytes, 1),
  headers: {},
  eventId: uniqueName('e'),
});

test('a record over the topic’s max.message.bytes is RECORD_TOO_LARGE, and the producer goes on', async () => {
  const topic = await freshTopic('too-large', 1, { 'max.message.bytes': '2000' });
  const p = producer();
  await expect(p.sendNow([record(topic, 10_000)])).rejects.toMatchObject({
    code: 'RECORD_TOO_LARGE',
    retriable: false,
  });
  // The next send goes through a fresh producer and lands.
  await p.sendNow([record(topic, 100)]);
});

test('a record for a topic that does not exist is TOPIC_UNKNOWN once kafkajs gives up', async () => {
  const p = producer();
  await expect(p.sendNow([record(uniqueName('no-such-topic'), 10)])).rejects.toMatchObject({
    code: 'TOPIC_UNKNOWN',
    retriable: false,
  });
});
