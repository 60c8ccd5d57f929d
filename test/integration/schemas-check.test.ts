// `keyflow schemas check` against the real registry: a change the subject's compatibility level allows
// passes with one line, a change it forbids exits 1 naming the field, and an unknown subject is "new".
// Each test registers its own subject (a fresh topic name) and hands the changed schema over as a file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { COMPATIBILITY, SchemaType } from '@kafkajs/confluent-schema-registry';
import { schemasCommand } from '../../src/cli/schemas';
import { env, schemaRegistry, uniqueName } from '../helpers';

const v1 = {
  type: 'record',
  name: 'Visit',
  namespace: 'keyflow.test',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'n', type: 'int' },
  ],
};

async function registered(level: 'BACKWARD' | 'FORWARD'): Promise<string> {
  const topic = uniqueName('schemacheck');
  const subject = `${topic}-value`;
  const res = await fetch(`${env('SCHEMA_REGISTRY_URL')}/config/${subject}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ compatibility: level }),
  });
  expect(res.ok).toBe(true);
  await schemaRegistry().register(
    { type: SchemaType.AVRO, schema: JSON.stringify(v1) },
    {
      subject,
      compatibility: COMPATIBILITY[level],
    },
  );
  return topic;
}

async function check(schemas: Record<string, object>): Promise<{ code: number; out: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'schemas-check-'));
  for (const [topic, avro] of Object.entries(schemas)) {
    fs.writeFileSync(path.join(dir, `${topic}.avsc`), JSON.stringify(avro));
  }
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  try {
    return { code: await schemasCommand.run(['check', '--schemas', dir]), out };
  } finally {
    spy.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a new field with a default passes under BACKWARD, with one line for the subject', async () => {
  const topic = await registered('BACKWARD');
  const v2 = { ...v1, fields: [...v1.fields, { name: 'note', type: ['null', 'string'], default: null }] };
  const { code, out } = await check({ [topic]: v2 });
  expect(code).toBe(0);
  expect(out).toMatch(
    new RegExp(`^compatible +${topic}-value \\(topic ${topic}, BACKWARD\\): may follow version 1$`, 'm'),
  );
  expect(out).toMatch(/schemas check: 0 incompatible, 1 compatible/);
});

test('a required field added exits 1 naming the field and who reads the topic', async () => {
  const topic = await registered('BACKWARD');
  const v2 = { ...v1, fields: [...v1.fields, { name: 'room', type: 'string' }] };
  const { code, out } = await check({ [topic]: v2 });
  expect(code).toBe(1);
  expect(out).toMatch(new RegExp(`^INCOMPATIBLE +${topic}-value \\(topic ${topic}, BACKWARD\\)`, 'm'));
  expect(out).toMatch(/field "room" is new and has no default/);
  expect(out).toMatch(new RegExp(`breaks: every consumer of ${topic}`));
});

test('a changed type exits 1 naming the field and both types', async () => {
  const topic = await registered('BACKWARD');
  const v2 = { ...v1, fields: [v1.fields[0], { name: 'n', type: 'string' }] };
  const { code, out } = await check({ [topic]: v2 });
  expect(code).toBe(1);
  expect(out).toMatch(/field "n" changed type: written as int, read as string/);
});

test("the subject's own level decides: FORWARD takes a required field but refuses dropping one", async () => {
  const added = await registered('FORWARD');
  const dropped = await registered('FORWARD');
  const { code, out } = await check({
    [added]: { ...v1, fields: [...v1.fields, { name: 'room', type: 'string' }] },
    [dropped]: { ...v1, fields: [v1.fields[0]] },
  });
  expect(code).toBe(1);
  expect(out).toMatch(new RegExp(`^compatible +${added}-value \\(topic ${added}, FORWARD\\)`, 'm'));
  expect(out).toMatch(new RegExp(`^INCOMPATIBLE +${dropped}-value \\(topic ${dropped}, FORWARD\\)`, 'm'));
  expect(out).toMatch(/field "n" is gone, and version 1 has no default for it/);
});

test('a subject the registry does not hold is reported as new and passes', async () => {
  const topic = uniqueName('schemacheck');
  const { code, out } = await check({ [topic]: v1 });
  expect(code).toBe(0);
  expect(out).toMatch(
    new RegExp(`^new +${topic}-value \\(topic ${topic}, \\w+\\): not in the registry`, 'm'),
  );
});
