// RegistryCodec against the real schema registry: BACKWARD subjects, refused incompatible changes,
// Confluent wire-format round trips (timestamp-millis as epoch-ms numbers, nullable fields), and
// each decode failure with its own code.
import { z } from 'zod';
import { KeyflowError } from '../../src/errors';
import { RegistryCodec, subjectOf } from '../../src/schemas';
import { topic } from '../../src/topology/define';
import type { TopicSpec } from '../../src/topology/types';
import { cleanupAll, env, onCleanup, schemaRegistry, uniqueName } from '../helpers';

afterAll(cleanupAll);

const visitFields = [
  { name: 'visitId', type: 'string' },
  { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
  { name: 'note', type: ['null', 'string'], default: null },
];

const visitZod = z.object({
  visitId: z.string().min(1),
  at: z.number().int(),
  note: z.string().nullable(),
});

function visitTopic(
  name: string,
  extraFields: Record<string, unknown>[] = [],
  zod: z.ZodType = visitZod,
): TopicSpec {
  return topic(name, {
    partitions: 1,
    key: 'visitId',
    value: {
      avro: {
        type: 'record',
        name: 'Visit',
        namespace: 'keyflow.test',
        fields: [...visitFields, ...extraFields],
      },
      zod,
    },
  });
}

/** A codec on the test registry, plus removal of the subjects it registers after this file. */
function newCodec(): RegistryCodec {
  return new RegistryCodec({ url: env('SCHEMA_REGISTRY_URL') });
}

function freshTopicName(prefix: string): string {
  const name = uniqueName(prefix);
  const url = `${env('SCHEMA_REGISTRY_URL')}/subjects/${subjectOf(name)}`;
  onCleanup(async () => {
    await fetch(url, { method: 'DELETE' });
    await fetch(`${url}?permanent=true`, { method: 'DELETE' });
  });
  return name;
}

async function errorOf(p: Promise<unknown>): Promise<KeyflowError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(KeyflowError);
    return err as KeyflowError;
  }
  throw new Error('expected a KeyflowError');
}

test('registerAll sets the subject to BACKWARD and remembers the schema id per topic', async () => {
  // BACKWARD lets consumers on a new schema read everything already in the topic.
  const name = freshTopicName('visits');
  const codec = newCodec();
  const ids = await codec.registerAll([visitTopic(name), topic(`${name}.dlq`, { partitions: 1, key: 'id' })]);
  expect([...ids.keys()]).toEqual([name]);
  expect(codec.schemaId(name)).toBe(ids.get(name));

  const res = await fetch(`${env('SCHEMA_REGISTRY_URL')}/config/${subjectOf(name)}`);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ compatibilityLevel: 'BACKWARD' });
  expect(await schemaRegistry().getLatestSchemaId(subjectOf(name))).toBe(ids.get(name));
  // Registering the same schema again is a no-op that returns the same id.
  expect((await newCodec().registerAll([visitTopic(name)])).get(name)).toBe(ids.get(name));
});

test('a BACKWARD-incompatible change (a new field without default) is refused with SCHEMA_INCOMPATIBLE', async () => {
  // New readers could not read old records lacking the field, so the registry must refuse it.
  const name = freshTopicName('visits');
  await newCodec().registerAll([visitTopic(name)]);
  const err = await errorOf(newCodec().registerAll([visitTopic(name, [{ name: 'room', type: 'string' }])]));
  expect(err.code).toBe('SCHEMA_INCOMPATIBLE');
  expect(err.retriable).toBe(false);
  expect(err.message).toContain(`subject "${subjectOf(name)}"`);
  expect(err.message).toMatch(/incompatib/i);
});

test('encode/decode round trip: Confluent wire format, timestamp-millis as an epoch-ms number, nullable field', async () => {
  // Avro timestamp-millis must come out as a number (not a Date), so zod schemas declare numbers.
  const name = freshTopicName('visits');
  const codec = newCodec();
  await codec.registerAll([visitTopic(name)]);
  const at = Date.UTC(2024, 5, 10, 8, 30, 0, 123);

  for (const value of [
    { visitId: 'v-1', at, note: null },
    { visitId: 'v-2', at, note: 'second floor' },
  ]) {
    const bytes = await codec.encode(name, value);
    expect(bytes[0]).toBe(0);
    expect(bytes.readInt32BE(1)).toBe(codec.schemaId(name));
    const decoded = await codec.decode<z.infer<typeof visitZod>>(name, bytes);
    expect(decoded).toEqual({ value, schemaId: codec.schemaId(name) });
    expect(typeof decoded.value.at).toBe('number');
  }
  // Another client (here the plain registry client) decodes our bytes to the same epoch-ms long.
  const bytes = await codec.encode(name, { visitId: 'v-3', at, note: null });
  expect(await schemaRegistry().decode(bytes)).toEqual({ visitId: 'v-3', at, note: null });
});

test('bytes written with an older schema decode into the current one, defaults filled', async () => {
  // BACKWARD's promise: after a compatible change, records already in the topic stay readable.
  const name = freshTopicName('visits');
  const v1 = newCodec();
  await v1.registerAll([visitTopic(name)]);
  const old = await v1.encode(name, { visitId: 'v-1', at: 1, note: null });

  const v2Zod = visitZod.extend({ room: z.string() });
  const v2 = newCodec();
  await v2.registerAll([visitTopic(name, [{ name: 'room', type: 'string', default: 'lobby' }], v2Zod)]);
  expect(v2.schemaId(name)).not.toBe(v1.schemaId(name));
  expect(await v2.decode(name, old)).toEqual({
    value: { visitId: 'v-1', at: 1, note: null, room: 'lobby' },
    schemaId: v1.schemaId(name),
  });
  // The reader for that writer is made once and kept: the next old record goes through it too.
  const older = await v1.encode(name, { visitId: 'v-2', at: 2, note: 'n' });
  expect((await v2.decode(name, older)).value).toEqual({ visitId: 'v-2', at: 2, note: 'n', room: 'lobby' });
  // And a record of the current schema still decodes as itself.
  const now = await v2.encode(name, { visitId: 'v-3', at: 3, note: null, room: 'hall' });
  expect((await v2.decode(name, now)).value).toEqual({ visitId: 'v-3', at: 3, note: null, room: 'hall' });
});

test('garbage bytes, a short message and an undecodable Avro body are DECODE_FAILED', async () => {
  // Bytes that are not ours must be dead-lettered at once, never retried.
  const name = freshTopicName('visits');
  const codec = newCodec();
  await codec.registerAll([visitTopic(name)]);
  const garbage = await errorOf(codec.decode(name, Buffer.from('{"visitId":"v-1"}')));
  expect(garbage).toMatchObject({ code: 'DECODE_FAILED', retriable: false });
  expect((await errorOf(codec.decode(name, Buffer.from([0, 0])))).code).toBe('DECODE_FAILED');

  const valid = await codec.encode(name, { visitId: 'v-1', at: 5, note: 'x' });
  const truncated = await errorOf(codec.decode(name, valid.subarray(0, valid.length - 2)));
  expect(truncated.code).toBe('DECODE_FAILED');
  expect(truncated.message).toContain(`schema id ${codec.schemaId(name)} is not decodable`);
});

test('a schema id the registry does not know is SCHEMA_UNKNOWN', async () => {
  // Bytes written against another registry name an id this one lacks; retrying would not help.
  const name = freshTopicName('visits');
  const codec = newCodec();
  await codec.registerAll([visitTopic(name)]);
  const bytes = Buffer.alloc(7);
  bytes.writeInt32BE(2_000_000_000, 1);
  const err = await errorOf(codec.decode(name, bytes));
  expect(err).toMatchObject({ code: 'SCHEMA_UNKNOWN', retriable: false });
  expect(err.message).toContain('schema id 2000000000');
});

test('a zod-invalid value is VALIDATION_FAILED on encode and on decode, naming the field', async () => {
  // zod guards both directions: a producer bug is caught before Kafka, a foreign writer on the way in.
  const name = freshTopicName('visits');
  const codec = newCodec();
  await codec.registerAll([visitTopic(name)]);

  const onEncode = await errorOf(codec.encode(name, { visitId: 'v-1', at: new Date(0), note: null }));
  expect(onEncode).toMatchObject({ code: 'VALIDATION_FAILED', retriable: false });
  expect(onEncode.message).toContain(`value for topic "${name}" is invalid at at:`);

  // Avro accepts an empty string; the topic's zod schema (min(1)) does not.
  const foreign = await schemaRegistry().encode(codec.schemaId(name), { visitId: '', at: 1, note: null });
  const onDecode = await errorOf(codec.decode(name, foreign));
  expect(onDecode).toMatchObject({ code: 'VALIDATION_FAILED', retriable: false });
  expect(onDecode.message).toContain(`decoded value on topic "${name}" is invalid at visitId:`);
});
