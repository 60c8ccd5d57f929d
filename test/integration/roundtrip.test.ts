// The stack round trip: an Avro value registered in the real schema registry, produced keyed to the
// real broker, consumed in a consumer group, decoded, and upserted into the real Mongo-protocol server.
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import {
  cleanupAll,
  eventually,
  freshDb,
  freshTopic,
  kafkaClient,
  onCleanup,
  schemaRegistry,
  uniqueName,
} from '../helpers';

afterAll(cleanupAll);

const schema = {
  type: 'record',
  name: 'Ping',
  namespace: 'keyflow.test',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'n', type: 'int' },
    { name: 'note', type: ['null', 'string'], default: null },
  ],
};

test('a keyed Avro message goes broker → consumer group → Mongo upsert with its decoded value', async () => {
  const topic = await freshTopic('roundtrip', 3);
  const registry = schemaRegistry();
  const { id: schemaId } = await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(schema) },
    { subject: `${topic}-value` },
  );
  expect(await registry.getLatestSchemaId(`${topic}-value`)).toBe(schemaId);

  const kafka = kafkaClient();
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  onCleanup(() => producer.disconnect());
  const value = await registry.encode(schemaId, { id: 'entity-42', n: 7, note: 'hello' });
  // The Confluent wire format: magic byte 0, then the 4-byte schema id.
  expect(value[0]).toBe(0);
  expect(value.readInt32BE(1)).toBe(schemaId);
  await producer.send({ topic, messages: [{ key: 'entity-42', value }] });

  const { db } = await freshDb();
  const consumer = kafka.consumer({ groupId: uniqueName('roundtrip-group') });
  await consumer.connect();
  onCleanup(() => consumer.disconnect());
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      const decoded = (await registry.decode(message.value!)) as {
        id: string;
        n: number;
        note: string | null;
      };
      await db
        .collection('pings')
        .updateOne(
          { _id: message.key!.toString() as never },
          { $set: { n: decoded.n, note: decoded.note, partition }, $inc: { seen: 1 } },
          { upsert: true },
        );
    },
  });

  const doc = await eventually(
    async () => (await db.collection('pings').findOne({ _id: 'entity-42' as never })) ?? undefined,
    60_000,
    'the upserted document',
  );
  expect(doc).toMatchObject({ _id: 'entity-42', n: 7, note: 'hello', seen: 1 });
  expect(typeof doc.partition).toBe('number');
});
