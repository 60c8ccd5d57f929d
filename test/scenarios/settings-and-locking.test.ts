// Tenant settings come from a compacted topic into a cache that updates without a restart; an invalid
// update is refused and the previous settings stay; the `*` record switches locking by id at runtime.
import { LEASES_COLLECTION } from '../../src/state/leases';
import { tenantSettingsTopic } from '../../src/settings/tenant-settings';
import { cleanupAll, eventually } from '../helpers';
import { COUNTERS, counterEvent, counterTopology } from './fixtures/counter';
import { dropAfter, prefix, runProcessor, testConfig, testProducer } from './harness';

afterAll(cleanupAll);

test('settings apply live, a bad update keeps the previous settings, and `*` switches entity leases', async () => {
  const p = prefix('settings');
  const settingsTopic = `${p}.tenant-settings`;
  // Inside each write of key L, while the event is in flight: is there a lease on L?
  const leaseInWrite = new Map<number, { owner: string } | null>();
  const base = counterTopology(p, {
    onWrite: async (e, ctx) => {
      if (e.key !== 'L') return;
      const lease = await ctx.db
        .collection<{ _id: string; owner: string }>(LEASES_COLLECTION)
        .findOne({ _id: 'L' });
      leaseInWrite.set(e.value.seq, lease);
    },
  });
  const topology = { ...base, topics: [...base.topics, tenantSettingsTopic(settingsTopic)] };
  const config = testConfig({ KEYFLOW_ENTITY_LOCKING: 'off' });
  const producer = await testProducer(config, topology);
  const processor = await runProcessor(config, topology, { settingsTopic });
  const { db, settings } = processor.context;
  dropAfter(() => db);
  const put = (tenantId: string, value: string) =>
    producer.publish([{ topic: settingsTopic, key: tenantId, value: { tenantId, settings: value } }]);

  await put('t1', JSON.stringify({ timezone: 'Europe/Madrid', crm: { apiKey: 'k-123' } }));
  await eventually(async () => (settings.get('t1') ? true : undefined), 30_000, 't1 settings');
  expect(settings.get('t1')).toEqual({ timezone: 'Europe/Madrid', crm: { apiKey: 'k-123' } });

  // Not JSON: refused. A later valid record for t2 shows the bad one was read (one partition, in order).
  await put('t1', '{"timezone": ');
  await put('t2', JSON.stringify({ timezone: 'UTC' }));
  await eventually(async () => (settings.get('t2') ? true : undefined), 30_000, 't2 settings');
  expect(settings.get('t1')).toEqual({ timezone: 'Europe/Madrid', crm: { apiKey: 'k-123' } });

  // Locking off: an event in flight holds no lease.
  await producer.publish([{ topic: `${p}.in`, key: 'L', value: counterEvent('L', 0) }]);
  await eventually(async () =>
    (await db.collection(COUNTERS).countDocuments({ _id: 'L' as never })) ? true : undefined,
  );
  expect(leaseInWrite.get(0)).toBeNull();

  // Switched on at runtime: the next event of L runs under a lease owned by this instance.
  await put('*', JSON.stringify({ entityLocking: 'lease' }));
  await eventually(
    async () => (settings.runtime().entityLocking === 'lease' ? true : undefined),
    30_000,
    'lease on',
  );
  await producer.publish([{ topic: `${p}.in`, key: 'L', value: counterEvent('L', 1) }]);
  const lease = await eventually(async () => leaseInWrite.get(1), 10_000, 'the write of L#1');
  expect(lease?.owner).toMatch(
    new RegExp(`^${processor.instanceId}:${topology.stages[0]!.name}:[^:]+[.]in:\\d+$`),
  );
  // Released when the event is done: left expired, not deleted, so the next holder's token grows.
  await eventually(
    async () =>
      (await db
        .collection(LEASES_COLLECTION)
        .countDocuments({ _id: 'L' as never, expiresAt: { $gt: 0 } })) === 0
        ? true
        : undefined,
    10_000,
    'the lease released',
  );
  expect(
    (await db.collection<{ _id: string; seqs: number[] }>(COUNTERS).findOne({ _id: 'L' }))!.seqs,
  ).toEqual([0, 1]);
});
