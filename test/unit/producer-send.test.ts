// A failed send says why, from kafkajs's own answer, and the producer that failed is never used
// again: kafkajs may have rolled its idempotent sequence back (kafkajs #1005), so the next send goes
// through a new producer (a new producer id) and the old one is closed once its sends are done.
import type { Kafka } from 'kafkajs';
import { KeyedProducer } from '../../src/producers/producer';
import { sendError } from '../../src/kafka/kafkajs-errors';
import type { WireRecord } from '../../src/producers/types';
import { kafkajsClient } from '../../src/kafka/kafkajs-client';

function kafkaError(name: string, message: string, extra: Record<string, unknown> = {}) {
  return Object.assign(new Error(message), { name, ...extra });
}

test('kafkajs answers become codes: refused outright is not retriable, an outage is', () => {
  const tooLarge = kafkaError('KafkaJSProtocolError', 'message too large', {
    type: 'MESSAGE_TOO_LARGE',
    retriable: false,
  });
  expect(sendError(tooLarge, 1)).toMatchObject({ code: 'RECORD_TOO_LARGE', retriable: false });
  // kafkajs retries an unknown topic itself; once it gives up, the wrapper hides the cause.
  const unknown = kafkaError('KafkaJSNumberOfRetriesExceeded', 'retries exceeded', {
    retriable: false,
    originalError: kafkaError('KafkaJSProtocolError', 'This server does not host this topic-partition', {
      type: 'UNKNOWN_TOPIC_OR_PARTITION',
      retriable: true,
    }),
  });
  expect(sendError(unknown, 2)).toMatchObject({ code: 'TOPIC_UNKNOWN', retriable: false });
  const denied = kafkaError('KafkaJSProtocolError', 'not authorized', {
    type: 'TOPIC_AUTHORIZATION_FAILED',
    retriable: false,
  });
  expect(sendError(denied, 1)).toMatchObject({ code: 'PRODUCE_NOT_AUTHORIZED', retriable: false });
  const timeout = kafkaError('KafkaJSNumberOfRetriesExceeded', 'retries exceeded', {
    retriable: false,
    originalError: kafkaError('KafkaJSRequestTimeoutError', 'Request Produce(key: 0, version: 7) timed out', {
      retriable: true,
    }),
  });
  const e = sendError(timeout, 3);
  expect(e).toMatchObject({ code: 'PRODUCE_FAILED', retriable: true });
  expect(e.message).toMatch(/^sending 3 record\(s\) failed: Request Produce.*timed out/);
});

interface FakeProducer {
  sends: number;
  disconnected: boolean;
}

/** Each sendBatch takes the next behaviour: hang until released, fail with a timeout, or succeed. */
function fakeKafka(plan: ('hang' | 'fail' | 'ok')[]) {
  const made: FakeProducer[] = [];
  const hanging: (() => void)[] = [];
  const kafka = {
    producer: () => {
      const p: FakeProducer = { sends: 0, disconnected: false };
      made.push(p);
      return {
        connect: async () => {},
        disconnect: async () => void (p.disconnected = true),
        sendBatch: async () => {
          p.sends++;
          const next = plan.shift() ?? 'ok';
          if (next === 'fail') {
            throw kafkaError('KafkaJSRequestTimeoutError', 'Request Produce timed out', { retriable: true });
          }
          if (next === 'hang') await new Promise<void>((r) => hanging.push(r));
        },
      };
    },
  };
  return { kafka: kafka as unknown as Kafka, made, release: () => hanging.shift()!() };
}

const record: WireRecord = { topic: 't', key: 'k', value: null, headers: {}, eventId: 'e' };

test('after a failed send the next goes through a new producer; the failed one is closed when idle', async () => {
  const { kafka, made, release } = fakeKafka(['hang', 'fail', 'ok']);
  const producer = new KeyedProducer(kafkajsClient(kafka), { encode: async () => Buffer.alloc(0) });
  // One send in flight on the first producer while another send on it fails.
  const slow = producer.sendNow([record]);
  await expect(producer.sendNow([record])).rejects.toMatchObject({ code: 'PRODUCE_FAILED', retriable: true });
  expect(made).toHaveLength(2);
  expect(made[0]!.disconnected).toBe(false); // its other send is still in flight
  release();
  await slow;
  expect(made[0]!.disconnected).toBe(true);
  await producer.sendNow([record]);
  expect(made.map((p) => p.sends)).toEqual([2, 1]);
  await producer.close();
  expect(made[1]!.disconnected).toBe(true);
});
