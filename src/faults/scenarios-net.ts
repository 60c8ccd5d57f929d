// Network faults through Toxiproxy: a processor cut off from Kafka for longer than its session, and
// latency with jitter toward MongoDB. The processor under test reaches the service only through the
// proxy; the suite's own clients go direct, so they can watch the group and the tables meanwhile.
import { setTimeout as sleep } from 'node:timers/promises';
import { publishAll } from '../bench/arena';
import { kafka as kafkaService } from '../services/kafka';
import { portOpen } from '../services/process';
import { ensure } from '../services/stack';
import type { FaultFigures } from './figures';
import {
  closeRig,
  openRig,
  recover,
  running,
  signalService,
  spawnWithEnv,
  waitFor,
  type EventSetSpec,
  type FaultContext,
  type Rig,
} from './rig';
import { groupMembers } from './membership';
import type { FaultScenario } from './scenarios';
import { faultProxyPorts, startToxiproxy, type FaultProxyPorts, type Toxiproxy } from './toxiproxy';

/** About 26,000 records, as the other backlog scenarios: long enough to cut in the middle. */
const BACKLOG: EventSetSpec = { appointments: 2000, leads: 3000, conversionsPerLead: 5, seed: 20261215 };

/** The cut outlasts the children's 6 s session timeout by far, so the coordinator must evict. */
const CUT_MS = 20_000;
/**
 * The blackholed connections are closed after this long. A `timeout` of 0 would keep them open, but the
 * toxic drops the bytes it holds, so after the heal such a connection carries a TCP stream with a hole
 * in it: kafkajs then saw responses that matched no request, which no real network produces.
 */
const CLOSE_AFTER_MS = 2_000;
const LATENCY = { latency: 300, jitter: 200 };
const LATENCY_MS = 15_000;
/** The windows the throughput before and after the latency is measured over. */
const WINDOW_MS = 8_000;

interface Net {
  rig: Rig;
  proxy: Toxiproxy;
  ports: FaultProxyPorts;
  notes: string[];
}

/**
 * The broker must offer the proxied listener (advertised at the proxy's port), which only the fault
 * suite asks for: a broker started without it (by `services up`) is restarted once with it.
 */
async function ensureProxiedListener(
  ctx: FaultContext,
  ports: FaultProxyPorts,
  notes: string[],
): Promise<void> {
  if (await portOpen(ports.brokerProxied)) return;
  const at = Date.now();
  await signalService(ctx, 'kafka', 'SIGTERM');
  await ensure(
    { ...ctx.stack, kafkaProxied: { port: ports.brokerProxied, advertisedPort: ports.kafka } },
    kafkaService,
  );
  notes.push(`broker restarted with its proxied listener first (${((Date.now() - at) / 1000).toFixed(1)} s)`);
}

async function withNet(
  ctx: FaultContext,
  label: string,
  body: (net: Net) => Promise<FaultFigures>,
): Promise<FaultFigures> {
  const notes: string[] = [];
  const ports = faultProxyPorts(ctx.config.faultProxyPort);
  const proxy = await startToxiproxy(ctx.stack, ports.api);
  try {
    await ensureProxiedListener(ctx, ports, notes);
    await proxy.proxy('kafka', ports.kafka, ports.brokerProxied);
    await proxy.proxy('mongo', ports.mongo, ctx.stack.ports.mongo);
    const rig = await openRig(ctx, label, BACKLOG);
    try {
      return await body({ rig, proxy, ports, notes });
    } finally {
      await closeRig(rig);
    }
  } finally {
    await proxy.close();
  }
}

async function untilShare(rig: Rig, share: number): Promise<void> {
  const ok = await waitFor(async () => (await rig.applied()) >= rig.expected * share, 120_000);
  if (!ok) throw new Error(`${share * 100}% of the effects never arrived before the fault`);
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Effects per second applied over `ms` from now (shorter if the stream ends first). */
async function rateOver(rig: Rig, ms: number): Promise<{ perSecond: number; applied: number }> {
  const from = await rig.applied();
  const at = Date.now();
  await waitFor(async () => (await rig.applied()) >= rig.expected || Date.now() - at >= ms, ms + 5_000);
  const applied = (await rig.applied()) - from;
  return { perSecond: Math.round((applied * 1000) / Math.max(1, Date.now() - at)), applied };
}

const networkCut: FaultScenario = {
  name: 'kafka-network-cut',
  stopsServices: true,
  description: `two processors on the backlog, one reaching Kafka only through Toxiproxy; its traffic blackholed both ways (timeout toxic: nothing passes, connections closed after 2 s) for ${CUT_MS / 1000} s, well past its 6 s session, then healed`,
  run: (ctx) =>
    withNet(ctx, 'kafka-network-cut', async ({ rig, proxy, ports, notes }) => {
      await publishAll(ctx.kafka, rig.records);
      const cut = spawnWithEnv(rig, 'kafka-network-cut', { KAFKA_BROKERS: `127.0.0.1:${ports.kafka}` });
      const direct = rig.spawn();
      await Promise.all([cut.ready, direct.ready]);
      // Two stage groups with both instances in each.
      const full = await waitFor(async () => (await groupMembers(ctx.membership, rig.arena)) === 4, 60_000);
      if (!full) notes.push('the two instances never were members of both groups together before the cut');
      await untilShare(rig, 0.1);
      notes.push(`cut with ${await rig.applied()} of ${rig.expected} effects applied`);
      const cutAt = Date.now();
      for (const stream of ['upstream', 'downstream'] as const) {
        await proxy.addToxic('kafka', {
          name: `cut-${stream}`,
          type: 'timeout',
          stream,
          attributes: { timeout: CLOSE_AFTER_MS },
        });
      }
      const evicted = await waitFor(async () => (await groupMembers(ctx.membership, rig.arena)) <= 2, CUT_MS);
      const evictedMs = Date.now() - cutAt;
      const appliedAtEviction = await rig.applied();
      await sleep(Math.max(0, cutAt + CUT_MS - Date.now()));
      notes.push(
        evicted
          ? `the cut-off member left both groups ${seconds(evictedMs)} after the cut`
          : `the cut-off member was still listed ${seconds(CUT_MS)} into the cut`,
      );
      notes.push(
        `${(await rig.applied()) - appliedAtEviction} effects applied by the other instance between the eviction and the heal`,
      );
      for (const stream of ['upstream', 'downstream'] as const)
        await proxy.removeToxic('kafka', `cut-${stream}`);
      const healedAt = Date.now();
      const back = await waitFor(
        async () => !running(cut) || (await groupMembers(ctx.membership, rig.arena)) === 4,
        120_000,
      );
      notes.push(
        !running(cut)
          ? `the cut-off instance exited by itself (code ${cut.child.exitCode}) instead of rejoining`
          : back
            ? `the cut-off member was in both groups again ${seconds(Date.now() - healedAt)} after the heal`
            : 'the cut-off member had not rejoined both groups 120 s after the heal',
      );
      const f = await recover(rig, 'kafka-network-cut', healedAt, notes);
      // Recovery by the other instance alone hides a processor that did not survive the cut.
      if (!running(cut)) f.restarts++;
      return f;
    }),
};

const mongoLatency: FaultScenario = {
  name: 'mongo-latency',
  stopsServices: true,
  description: `a processor reaching MongoDB only through Toxiproxy; ${LATENCY.latency} ± ${LATENCY.jitter} ms added each way for ${LATENCY_MS / 1000} s mid-stream, then removed`,
  run: (ctx) =>
    withNet(ctx, 'mongo-latency', async ({ rig, proxy, ports, notes }) => {
      await publishAll(ctx.kafka, rig.records);
      const instance = spawnWithEnv(rig, 'mongo-latency', {
        MONGO_URL: `mongodb://127.0.0.1:${ports.mongo}/?directConnection=true`,
      });
      await instance.ready;
      await untilShare(rig, 0.05);
      const before = await rateOver(rig, WINDOW_MS);
      notes.push(`latency added with ${await rig.applied()} of ${rig.expected} effects applied`);
      for (const stream of ['upstream', 'downstream'] as const) {
        await proxy.addToxic('mongo', {
          name: `slow-${stream}`,
          type: 'latency',
          stream,
          attributes: LATENCY,
        });
      }
      const during = await rateOver(rig, LATENCY_MS);
      for (const stream of ['upstream', 'downstream'] as const)
        await proxy.removeToxic('mongo', `slow-${stream}`);
      const healedAt = Date.now();
      const after = await rateOver(rig, WINDOW_MS);
      notes.push(
        `throughput: ${before.perSecond}/s before, ${during.perSecond}/s with the latency (${during.applied} effects in ${LATENCY_MS / 1000} s), ${after.perSecond}/s in the ${WINDOW_MS / 1000} s after`,
      );
      const f = await recover(rig, 'mongo-latency', healedAt, notes);
      if (!running(instance)) {
        notes.push(`the instance exited by itself (code ${instance.child.exitCode})`);
        f.restarts++;
      }
      return f;
    }),
};

export const NET_SCENARIOS: FaultScenario[] = [networkCut, mongoLatency];
