// The lag collector's arithmetic against a fake admin: lag is end minus committed (everything retained
// while nothing is committed), the oldest message's age comes from the end-offset timeline, a partition
// with lag and no committed progress for the window is stalled, and a failed poll keeps the last figures.
import { Registry } from 'prom-client';
import { createLogger } from '../../src/logger';
import { LagCollector, type LagOffsets } from '../../src/monitoring/lag';

/** Committed offsets as the broker reports them: -1 is none (absent from the reader's map). */
class FakeAdmin implements LagOffsets {
  ends: Record<number, number> = { 0: 0, 1: 0 };
  committedAt: Record<number, number> = { 0: -1, 1: -1 };
  members = 1;
  fail = false;
  async bounds() {
    if (this.fail) throw new Error('broker gone');
    return new Map(Object.entries(this.ends).map(([p, end]) => [Number(p), { low: 0n, high: BigInt(end) }]));
  }
  async committed(_groupId: string, _topic: string) {
    return new Map(
      Object.entries(this.committedAt).flatMap(([p, o]) => (o >= 0 ? [[Number(p), BigInt(o)] as const] : [])),
    );
  }
  async groups(ids: string[]) {
    return new Map(
      ids.map((id) => [
        id,
        { state: 'Stable', members: this.members, assigned: Array(this.members).fill(1) },
      ]),
    );
  }
}

function setup() {
  const admin = new FakeAdmin();
  const registry = new Registry();
  let now = 1_000_000;
  const collector = new LagCollector({
    offsets: admin,
    groups: [{ group: 'count', topics: ['in'] }],
    registry,
    log: createLogger('silent'),
    intervalMs: 60_000,
    stallAfterMs: 30_000,
    now: () => now,
  });
  return {
    admin,
    registry,
    collector,
    tick: async (ms: number) => {
      now += ms;
      await collector.poll();
    },
    part: (p: number) => collector.snapshot().groups[0]!.partitions.find((x) => x.partition === p)!,
  };
}

async function gauge(registry: Registry, name: string, partition: string): Promise<number | undefined> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const values = (m as { values: { labels: Record<string, string>; value: number }[] } | undefined)?.values;
  return values?.find((v) => v.labels.partition === partition)?.value;
}

test('lag is end minus committed; with nothing committed everything retained counts', async () => {
  const { admin, registry, tick, part, collector } = setup();
  admin.ends = { 0: 10, 1: 4 };
  admin.committedAt = { 0: 7, 1: -1 };
  await tick(0);
  expect(part(0)).toMatchObject({ lag: 3, committed: '7', end: '10' });
  expect(part(1)).toMatchObject({ lag: 4, committed: null });
  expect(await gauge(registry, 'kafka_consumergroup_lag', '0')).toBe(3);
  expect(collector.snapshot().groups[0]).toMatchObject({ members: 1, state: 'Stable' });
});

test('the age of the oldest unprocessed message is interpolated from when end offsets were seen', async () => {
  const { admin, tick, part } = setup();
  admin.committedAt = { 0: 0, 1: 0 };
  await tick(0); // t=0: end 0
  await tick(10_000); // t=10s: still 0
  admin.ends = { 0: 10, 1: 0 };
  await tick(10_000); // t=20s: end 10, so offsets 0..9 were written between 10s and 20s
  // The oldest unprocessed (offset 0) is the first of ten written in that window: at 11s, 9s ago.
  expect(part(0).lagSeconds).toBeCloseTo(9, 5);
  admin.committedAt = { 0: 5, 1: 0 };
  await tick(5_000); // t=25s: offset 5 written at 16s
  expect(part(0).lagSeconds).toBeCloseTo(9, 5);
  admin.committedAt = { 0: 10, 1: 0 };
  await tick(1_000);
  expect(part(0)).toMatchObject({ lag: 0, lagSeconds: 0 });
  expect(part(1)).toMatchObject({ lag: 0, lagSeconds: 0, stalled: false });
});

test('a partition with lag and no committed progress for the window is stalled, and recovers', async () => {
  const { admin, registry, tick, part, collector } = setup();
  admin.ends = { 0: 5, 1: 5 };
  admin.committedAt = { 0: 1, 1: 1 };
  await tick(0);
  await tick(20_000);
  admin.committedAt = { 0: 1, 1: 3 };
  await tick(15_000); // 35 s without progress on 0; partition 1 moved
  expect(part(0)).toMatchObject({ stalled: true, stuckForMs: 35_000 });
  expect(part(1).stalled).toBe(false);
  expect(part(1).ratePerSec).toBeCloseTo(2 / 35, 5);
  expect(await gauge(registry, 'keyflow_partition_stalled', '0')).toBe(1);
  const ready = collector.readiness();
  expect(ready).toMatchObject({ ok: false });
  expect(typeof ready === 'object' && ready.detail).toMatch(/stalled: count in\/0 lag 4 for 35s/);

  admin.committedAt = { 0: 2, 1: 3 };
  await tick(1_000);
  expect(part(0).stalled).toBe(false);
  expect(await gauge(registry, 'keyflow_partition_stalled', '0')).toBe(0);
  expect(collector.readiness()).toMatchObject({ ok: true });
});

test('a failed poll keeps the last figures and says why', async () => {
  const { admin, tick, part, collector } = setup();
  admin.ends = { 0: 3, 1: 0 };
  admin.committedAt = { 0: 0, 1: 0 };
  await tick(0);
  admin.fail = true;
  await tick(1_000);
  expect(part(0).lag).toBe(3);
  expect(collector.snapshot().error).toMatch(/broker gone/);
  expect(collector.readiness()).toMatchObject({ ok: true });
  admin.fail = false;
  await tick(1_000);
  expect(collector.snapshot().error).toBeUndefined();
  await collector.stop();
  await collector.stop();
});
