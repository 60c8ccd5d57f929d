// The schema registry keeps the promises Keyflow relies on: one id per schema, BACKWARD refusing a change
// that cannot read old data, Confluent-style errors, and (for the local stack's registry) schemas that
// survive a restart.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import { loadConfig } from '../../src/config';
import { isAlive } from '../../src/services/process';
import { registry as localRegistry } from '../../src/services/registry';
import { stackContext } from '../../src/services/stack';
import type { StackContext } from '../../src/services/types';
import { cleanupAll, env, onCleanup, schemaRegistry, uniqueName, freePort } from '../helpers';

afterAll(cleanupAll);

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

const v1 = {
  type: 'record',
  name: 'Visit',
  namespace: 'keyflow.test',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'n', type: 'int' },
  ],
};
/** Adds a field with a default: a reader on v2 can still read v1 data. */
const v2 = { ...v1, fields: [...v1.fields, { name: 'note', type: ['null', 'string'], default: null }] };
/** Adds a field without a default: a reader on it cannot read v1 data, so BACKWARD must refuse it. */
const incompatible = { ...v1, fields: [...v1.fields, { name: 'room', type: 'string' }] };

const avro = (schema: object) => ({ type: SchemaType.AVRO as const, schema: JSON.stringify(schema) });

async function call(
  baseUrl: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { 'content-type': CONTENT_TYPE, accept: CONTENT_TYPE },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('one schema gets one id, readable back by id, and values round-trip through it', async () => {
  const url = env('SCHEMA_REGISTRY_URL');
  const registry = schemaRegistry();
  const subject = `${uniqueName('registry')}-value`;

  const { id } = await registry.register(avro(v1), { subject });
  expect((await registry.register(avro(v1), { subject })).id).toBe(id);
  // The same schema written differently (whitespace) is still the same schema.
  const reformatted = { type: SchemaType.AVRO as const, schema: JSON.stringify(v1, null, 2) };
  expect((await registry.register(reformatted, { subject })).id).toBe(id);
  expect(await registry.getRegistryId(subject, 'latest')).toBe(id);

  const byId = await call(url, 'GET', `/schemas/ids/${id}`);
  expect(byId.status).toBe(200);
  expect(JSON.parse(byId.body.schema as string)).toMatchObject({ name: 'Visit', namespace: 'keyflow.test' });

  const bytes = await registry.encode(id, { id: 'visit-1', n: 3 });
  expect(bytes.readInt32BE(1)).toBe(id);
  expect(await registry.decode(bytes)).toEqual({ id: 'visit-1', n: 3 });
});

test('under BACKWARD a change with a default is accepted and one without is refused with 409', async () => {
  const url = env('SCHEMA_REGISTRY_URL');
  const registry = schemaRegistry();
  const subject = `${uniqueName('registry')}-value`;
  const { id: id1 } = await registry.register(avro(v1), { subject });

  const put = await call(url, 'PUT', `/config/${subject}`, { compatibility: 'BACKWARD' });
  expect(put).toMatchObject({ status: 200, body: { compatibility: 'BACKWARD' } });
  expect((await call(url, 'GET', `/config/${subject}`)).body).toMatchObject({
    compatibilityLevel: 'BACKWARD',
  });

  const { id: id2 } = await registry.register(avro(v2), { subject });
  expect(id2).not.toBe(id1);

  const check = await call(url, 'POST', `/compatibility/subjects/${subject}/versions/latest`, {
    schema: JSON.stringify(incompatible),
  });
  expect(check).toMatchObject({ status: 200, body: { is_compatible: false } });
  const refused = await call(url, 'POST', `/subjects/${subject}/versions`, {
    schema: JSON.stringify(incompatible),
  });
  expect(refused).toMatchObject({ status: 409, body: { error_code: 409 } });
  await expect(registry.register(avro(incompatible), { subject })).rejects.toMatchObject({ status: 409 });

  // The refusal changed nothing: still two versions, the latest being v2.
  expect((await call(url, 'GET', `/subjects/${subject}/versions/latest`)).body).toMatchObject({
    id: id2,
    version: 2,
  });
  // Data written with v1 is readable by a reader on v2, which is what BACKWARD promised.
  const old = await registry.encode(id1, { id: 'visit-2', n: 4 });
  expect(await registry.decode(old, { [SchemaType.AVRO]: { readerSchema: v2 as never } })).toEqual({
    id: 'visit-2',
    n: 4,
    note: null,
  });
});

test('unknown subjects and ids answer with Confluent error codes', async () => {
  const url = env('SCHEMA_REGISTRY_URL');
  const missing = await call(url, 'GET', `/subjects/${uniqueName('nosuch')}-value/versions`);
  expect(missing).toMatchObject({ status: 404, body: { error_code: 40401 } });
  const noId = await call(url, 'GET', '/schemas/ids/987654321');
  expect(noId).toMatchObject({ status: 404, body: { error_code: 40403 } });
});

async function stopGroup(pid: number): Promise<void> {
  if (isAlive(pid)) process.kill(-pid, 'SIGTERM');
  const deadline = Date.now() + 20_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (isAlive(pid)) process.kill(-pid, 'SIGKILL');
}

async function startAndWait(ctx: StackContext): Promise<number> {
  const pid = await localRegistry.start(ctx);
  onCleanup(() => stopGroup(pid));
  const deadline = Date.now() + 90_000;
  while (!(await localRegistry.ready(ctx))) {
    if (!isAlive(pid) || Date.now() > deadline)
      throw new Error(`local registry did not come up (pid ${pid})`);
    await new Promise((r) => setTimeout(r, 300));
  }
  return pid;
}

// Runs a registry of its own (not the shared one) so restarting it disturbs no other test.
test("the local stack's registry keeps subjects, ids and compatibility across a restart", async () => {
  const cfg = loadConfig(
    { ...process.env, KAFKA_BROKERS: '', SCHEMA_REGISTRY_URL: '', MONGO_URL: '' },
    { require: [] },
  );
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-registry-'));
  onCleanup(async () => fs.rmSync(stateDir, { recursive: true, force: true }));
  const base = stackContext(cfg);
  const ctx: StackContext = { ...base, stateDir, ports: { ...base.ports, registry: await freePort() } };
  await localRegistry.install(ctx);
  const url = localRegistry.endpoint(ctx).env.SCHEMA_REGISTRY_URL!;
  const subject = `${uniqueName('restart')}-value`;

  const first = await startAndWait(ctx);
  const { id: id1 } = (
    await call(url, 'POST', `/subjects/${subject}/versions`, { schema: JSON.stringify(v1) })
  ).body;
  await call(url, 'PUT', `/config/${subject}`, { compatibility: 'BACKWARD' });
  const { id: id2 } = (
    await call(url, 'POST', `/subjects/${subject}/versions`, { schema: JSON.stringify(v2) })
  ).body;
  await stopGroup(first);

  await startAndWait(ctx);
  expect((await call(url, 'GET', `/subjects/${subject}/versions/1`)).body).toMatchObject({ id: id1 });
  expect((await call(url, 'GET', `/subjects/${subject}/versions/latest`)).body).toMatchObject({
    id: id2,
    version: 2,
  });
  expect((await call(url, 'GET', `/config/${subject}`)).body).toMatchObject({
    compatibilityLevel: 'BACKWARD',
  });
  const again = await call(url, 'POST', `/subjects/${subject}/versions`, { schema: JSON.stringify(v1) });
  expect(again.body).toMatchObject({ id: id1 });
  const refused = await call(url, 'POST', `/subjects/${subject}/versions`, {
    schema: JSON.stringify(incompatible),
  });
  expect(refused.status).toBe(409);
}, 300_000);
