// A deliberately slowed stage shows kafka_consumergroup_lag rising on /metrics and on /ops/api/stages,
// and both return to zero once it catches up; a partition held by one very slow event is flagged
// stalled (metric, ops API and /readyz) and is cleared once the event commits. The processor runs under
// an application id: metrics name its group, /ops its stage.
import { recordSkippedRange } from '../../src/state/skipped-ranges';
import { cleanupAll, eventually, uniqueName } from '../helpers';
import { counterEvent } from './fixtures/counter';
import { startOpsRig, type OpsRig } from './harness';

afterAll(cleanupAll);

const STALL_AFTER_MS = 3000;

interface OpsStage {
  name: string;
  group: string;
  lag: number;
  lagSeconds: number;
  stalled: number;
  partitions: { partition: number; lag: number; stalled: boolean }[];
}

let base: string;
let admin: string;
let auth: OpsRig['auth'];
let stage: string;
let group: string;
let send: OpsRig['send'];
let rig: OpsRig;

beforeAll(async () => {
  rig = await startOpsRig('lag', STALL_AFTER_MS, { KEYFLOW_APPLICATION_ID: uniqueName('lag-app') });
  ({ base, admin, auth, stage, group, send } = rig);
  expect(group).toBe(`${rig.processor.context.config.applicationId}.${stage}`);
});

/** Our group's series of a metric on /metrics, summed over partitions. */
async function metricSum(name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && line.includes(`consumergroup="${group}"`)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

async function opsStage(): Promise<OpsStage> {
  const body = (await (await fetch(`${admin}/ops/api/stages`, { headers: auth })).json()) as {
    stages: OpsStage[];
  };
  const found = body.stages.find((s) => s.name === stage)!;
  expect(found.group).toBe(group);
  return found;
}

test('lag rises on /metrics and /ops while the stage is slow, then returns to zero', async () => {
  // Two keys, each strictly sequential: 25 events of 120 ms per key keep the stage behind for ~3 s.
  const events = ['a', 'b'].flatMap((id) =>
    Array.from({ length: 25 }, (_, i) => counterEvent(`${id}-${stage}`, i, { delayMs: 120 })),
  );
  await send(events);

  let peakMetric = 0;
  let peakOps = 0;
  let peakSeconds = 0;
  await eventually(
    async () => {
      const [m, s, o] = await Promise.all([
        metricSum('kafka_consumergroup_lag'),
        metricSum('keyflow_consumergroup_lag_seconds'),
        opsStage(),
      ]);
      peakMetric = Math.max(peakMetric, m);
      peakOps = Math.max(peakOps, o.lag);
      peakSeconds = Math.max(peakSeconds, s);
      return peakMetric > 5 && peakOps > 5 && peakSeconds > 0 ? true : undefined;
    },
    20_000,
    'lag to rise',
  );

  await eventually(
    async () => {
      const [m, o] = await Promise.all([metricSum('kafka_consumergroup_lag'), opsStage()]);
      return m === 0 && o.lag === 0 && o.lagSeconds === 0 ? true : undefined;
    },
    60_000,
    'lag back to zero',
  );
  expect(await metricSum('keyflow_consumergroup_lag_seconds')).toBe(0);
  expect(await metricSum('keyflow_partition_stalled')).toBe(0);
});

test('a partition with lag and no committed progress is flagged stalled, then cleared', async () => {
  // One event that takes three stall windows: its partition has lag 1 and its offset does not move.
  await send([counterEvent(`slow-${stage}`, 0, { delayMs: STALL_AFTER_MS * 3 })]);

  const flagged = await eventually(
    async () => {
      const o = await opsStage();
      return o.stalled === 1 ? o : undefined;
    },
    STALL_AFTER_MS * 3,
    'the partition to be flagged stalled',
  );
  expect(flagged.partitions.filter((p) => p.stalled)).toEqual([expect.objectContaining({ lag: 1 })]);
  expect(await metricSum('keyflow_partition_stalled')).toBe(1);
  const ready = await fetch(`${base}/readyz`);
  expect(ready.status).toBe(503);
  const report = (await ready.json()) as { checks: Record<string, { ok: boolean; detail: string }> };
  expect(report.checks.lag).toMatchObject({
    ok: false,
    detail: expect.stringContaining(`stalled: ${group}`),
  });

  await eventually(
    async () => {
      const [o, r] = await Promise.all([opsStage(), fetch(`${base}/readyz`)]);
      return o.stalled === 0 && o.lag === 0 && r.status === 200 ? true : undefined;
    },
    STALL_AFTER_MS * 5,
    'the stall to clear',
  );
  expect(await metricSum('keyflow_partition_stalled')).toBe(0);
});

test('/ops/api/skipped-ranges lists the ranges a stage never read, for admins only', async () => {
  const db = rig.processor.context.db;
  const range = { stage, topic: rig.input, partition: 1, from: '10', to: '25', logStart: '25', count: 15 };
  await recordSkippedRange(db, { ...range, detectedAt: Date.parse('2026-12-02T06:00:00Z') });
  // A second report of the same range (another member, a restart) changes nothing.
  await recordSkippedRange(db, { ...range, detectedAt: Date.now() });

  const res = await fetch(`${admin}/ops/api/skipped-ranges?stage=${encodeURIComponent(stage)}`, {
    headers: auth,
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({
    count: 1,
    offsets: 15,
    ranges: [{ ...range, detectedAt: '2026-12-02T06:00:00.000Z' }],
  });

  const unknown = await fetch(`${admin}/ops/api/skipped-ranges?stage=no.such.stage`, { headers: auth });
  expect(unknown.status).toBe(400);
  expect(JSON.stringify(await unknown.json())).toContain('unknown stage no.such.stage');
  expect((await fetch(`${admin}/ops/api/skipped-ranges`)).status).toBe(401);
});
