// How an upstream team publishes to Keyflow with stock clients only (kafkajs and the Confluent
// schema-registry client), none of Keyflow's code. Usage:
//   KAFKA_BROKERS=host:9092 SCHEMA_REGISTRY_URL=http://registry:8081 node examples/upstream-producer.mjs
import { randomUUID } from 'node:crypto';
import { Kafka } from 'kafkajs';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';

const topic = process.env.TOPIC ?? 'external.appointments.v1';
const registry = new SchemaRegistry({ host: process.env.SCHEMA_REGISTRY_URL });
const kafka = new Kafka({ clientId: 'crm-sync', brokers: process.env.KAFKA_BROKERS.split(',') });
// Idempotent: a retried send never writes the event twice into the topic.
const producer = kafka.producer({ idempotent: true });

// The processor registers the schema at start; producers use the latest version of `<topic>-value`.
const schemaId = await registry.getLatestSchemaId(`${topic}-value`);

const appointmentId = process.env.APPOINTMENT_ID ?? `appt-${randomUUID()}`;
const event = {
  eventId: randomUUID(), // unique per event: a re-send with the same id is applied once
  tenantId: process.env.TENANT_ID ?? 'acme',
  appointmentId,
  leadId: 'lead-42',
  kind: 'SCHEDULED',
  scheduledFor: Date.parse('2026-12-01T15:00:00Z'), // timestamp-millis, or null
  occurredAt: Date.now(), // when it happened in your system, not when you send it
  source: 'crm',
};

await producer.connect();
// Key = the entity id: every event of one appointment lands in one partition, in order.
await producer.send({
  topic,
  messages: [{ key: appointmentId, value: await registry.encode(schemaId, event) }],
});
await producer.disconnect();
console.log(`published ${event.eventId} for ${appointmentId} with schema ${schemaId}`);
