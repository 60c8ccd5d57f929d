// Replay on the real dataflow tables: after 10,000 sample events (late and duplicated ones included)
// a full pass finds zero differences, and a change written into a table behind the processor's back is
// found by `keyflow replay --id` and fixed by `keyflow replay --id … --repair`.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { appointmentsFlow } from '../../src/appointments';
import { APPOINTMENTS } from '../../src/appointments/tables';
import { generate } from '../../src/app/demo/generate';
import { conversionsFlow } from '../../src/conversions';
import { replayAll } from '../../src/replay/full-pass';
import { adminClient, cleanupAll, env, eventually } from '../helpers';
import { freshDbNamed, prefix, runProcessor, testConfig, testProducer } from './harness';

afterAll(cleanupAll);

const BIN = path.join(__dirname, '..', '..', 'bin', 'keyflow.js');

test('a full pass over 10,000 events is clean, and replay --id finds and repairs a tampered row', async () => {
  const p = prefix('replay-app');
  const flows = [appointmentsFlow({ prefix: p }), conversionsFlow({ prefix: p })];
  const topology = { topics: flows.flatMap((f) => f.topics), stages: flows.flatMap((f) => f.stages) };
  const config = testConfig();
  const producer = await testProducer(config, topology);
  await runProcessor(config, topology, { indexes: flows.flatMap((f) => f.indexes) });
  const { db } = await freshDbNamed(config.mongoDb);

  const events = generate({
    seed: 11,
    runId: p,
    tenants: 2,
    appointments: 2000,
    leads: 1200,
    conversionsPerLead: 4,
    lateShare: 0.05,
    duplicateShare: 0.03,
    start: Date.UTC(2026, 9, 1),
  });
  const distinct = new Set(events.map((e) => e.value.eventId)).size;
  expect(distinct).toBeGreaterThanOrEqual(10_000);
  for (let i = 0; i < events.length; i += 1000) {
    await producer.publish(
      events.slice(i, i + 1000).map((e) => ({
        topic: `${p}.${e.topic === 'appointments' ? 'external.appointments.v1' : 'external.conversions.v1'}`,
        key: e.key,
        value: e.value,
        eventId: e.value.eventId,
      })),
    );
  }
  await eventually(
    async () => {
      const archived =
        (await db.collection('RSAppointmentEvents').estimatedDocumentCount()) +
        (await db.collection('RSLeadConversionEvents').estimatedDocumentCount());
      return archived === distinct ? true : undefined;
    },
    240_000,
    `all ${distinct} distinct events archived`,
  );
  // Archived is not yet applied: a batch writes its archive entries first, its rows after. Every stage
  // has committed its whole input only once all of its writes are done.
  const admin = await adminClient();
  await eventually(
    async () => {
      for (const stage of topology.stages) {
        const committed = await admin.fetchOffsets({ groupId: stage.name, topics: stage.inputs });
        for (const t of committed) {
          const ends = await admin.fetchTopicOffsets(t.topic);
          for (const p of t.partitions) {
            const { low, high } = ends.find((e) => e.partition === p.partition)!;
            if (high !== low && BigInt(p.offset) < BigInt(high)) return undefined;
          }
        }
      }
      return true;
    },
    120_000,
    'every stage committed its whole input',
  );

  const summary = await replayAll(
    db,
    flows.flatMap((f) => f.replay),
    { shards: 4 },
  );
  expect(summary.checked).toBe(3200);
  expect(summary.differences).toBe(0);

  const victim = events.find((e) => e.topic === 'appointments')!.key;
  await db
    .collection<{ _id: string }>(APPOINTMENTS)
    .updateOne({ _id: victim }, { $set: { status: 'TAMPERED' } });
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, 'replay', '--id', victim, '--json', ...args], {
      env: { ...process.env, MONGO_URL: env('MONGO_URL'), MONGO_DB: config.mongoDb, LOG_LEVEL: 'error' },
      encoding: 'utf8',
      timeout: 60_000,
    });
  const found = cli();
  expect(found.status).toBe(1);
  const report = JSON.parse(found.stdout) as {
    differences: { table: string; field: string; actual: unknown }[];
  };
  expect(report.differences).toEqual([
    expect.objectContaining({ table: APPOINTMENTS, field: 'status', actual: 'TAMPERED' }),
  ]);
  const repaired = cli('--repair');
  expect(repaired.status).toBe(0);
  expect(cli().status).toBe(0);
  expect(
    (await db.collection<{ _id: string; status: string }>(APPOINTMENTS).findOne({ _id: victim }))!.status,
  ).not.toBe('TAMPERED');
});
