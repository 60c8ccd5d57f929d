// A zombie member: a processor child SIGSTOPped mid-batch while events flow, held past its session
// timeout until the other processor has taken its partitions and committed past where it stopped, then
// SIGCONTed. It wakes holding the batch it was in; whatever it still writes or sends must be refused —
// the version guards in MongoDB, the fenced transaction in Kafka — so the tables stay exact and the
// change topics, read with read_committed, hold no change twice and lack none.
import type { Kafka } from 'kafkajs';
import { publishAll, publishPaced, type Arena } from '../bench/arena';
import type { FaultFigures } from './figures';
import {
  closeRig,
  openRig,
  recover,
  spawnWithEnv,
  waitFor,
  type EventSetSpec,
  type FaultContext,
} from './rig';
import { groupStates, untilStable } from './membership';
import { startReady } from './scale';
import type { FaultScenario } from './scenarios';

/** About 4,000 records, 5% upstream re-sends: half a backlog, half paced while the zombie is out. */
const SET: EventSetSpec = {
  appointments: 400,
  leads: 600,
  conversionsPerLead: 5,
  seed: 20261223,
  duplicateShare: 0.05,
};
const SMALL: EventSetSpec = { ...SET, appointments: 100, leads: 160 };

/**
 * The shortest session the setting and the broker allow (group.min.session.timeout.ms is 6 s), so the
 * coordinator drops the stopped member in seconds.
 */
const SESSION_MS = 6_000;

/** Offsets committed by the stage groups, and the partitions' ends, per `topic:partition`. */
async function positions(kafka: Kafka, arena: Arena): Promise<Map<string, { at: number; end: number }>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const out = new Map<string, { at: number; end: number }>();
    for (const flow of ['appointments', 'conversions'] as const) {
      const topic = arena.input[flow];
      const ends = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({ groupId: arena.groups[flow], topics: [topic] });
      for (const e of ends) {
        const c = committed?.partitions.find((p) => p.partition === e.partition);
        const at = c === undefined || Number(c.offset) < 0 ? Number(e.low) : Number(c.offset);
        out.set(`${topic}:${e.partition}`, { at, end: Number(e.high) });
      }
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}

async function run(ctx: FaultContext): Promise<FaultFigures> {
  const rig = await openRig(ctx, 'zombie', ctx.quick ? SMALL : SET);
  try {
    const notes: string[] = [];
    const failed: string[] = [];
    const env = { KEYFLOW_SESSION_TIMEOUT_MS: String(SESSION_MS), KEYFLOW_HEARTBEAT_INTERVAL_MS: '1000' };
    const zombie = await startReady(() => spawnWithEnv(rig, 'zombie', env), notes);
    await startReady(() => spawnWithEnv(rig, 'zombie', env), notes);
    if ((await untilStable(ctx.membership, rig.arena, 2)) === undefined) {
      failed.push('the two processors never shared the stage groups');
    }
    // Half the records as a backlog, so the member is in the middle of a batch when it stops; the rest
    // paced, so events flow while it is out and when it wakes.
    const half = Math.floor(rig.records.length / 2);
    await publishAll(ctx.kafka, rig.records.slice(0, half));
    const paced = rig.records.slice(half);
    const publishing = publishPaced(ctx.kafka, paced, paced.length / (ctx.quick ? 20 : 45), () => false);
    await waitFor(async () => (await rig.applied()) >= rig.expected * 0.15, 120_000);

    const atStop = await positions(ctx.kafka, rig.arena);
    const stoppedAt = Date.now();
    zombie.child.kill('SIGSTOP');
    const applied = await rig.applied();
    const behind = [...atStop].filter(([, p]) => p.at < p.end).map(([k]) => k);
    notes.push(
      `SIGSTOP with ${applied} of ${rig.expected} effects applied, ${behind.length} of ${atStop.size} input partitions with records pending`,
    );
    if (applied >= rig.expected)
      failed.push('the zombie stopped after the stream was done: no batch in hand');

    // The coordinator drops it after the session timeout; the other member then owns every partition
    // and must commit past where each stood when the zombie stopped.
    const aloneAt = await untilStable(ctx.membership, rig.arena, 1, 120_000);
    const tookOver = await waitFor(async () => {
      const now = await positions(ctx.kafka, rig.arena);
      return behind.every((k) => now.get(k)!.at > atStop.get(k)!.at);
    }, 180_000);
    if (aloneAt === undefined || !tookOver) {
      failed.push('the other processor never took over the stopped one’s partitions');
    }
    const contAt = Date.now();
    zombie.child.kill('SIGCONT');
    notes.push(
      `groups down to one member ${aloneAt === undefined ? 'never' : `${aloneAt - stoppedAt} ms`} after the SIGSTOP (session ${SESSION_MS} ms); ` +
        `SIGCONT after ${contAt - stoppedAt} ms, once the other member had committed past every pending partition`,
    );
    // It wakes with its batch: what it writes is refused, what it sends is fenced. Then it rejoins.
    const rejoinedAt = await untilStable(ctx.membership, rig.arena, 2, 120_000);
    if (rejoinedAt === undefined) {
      failed.push(
        `the woken processor never rejoined the stage groups (${await groupStates(ctx.membership, rig.arena)})`,
      );
    } else notes.push(`the woken processor rejoined ${rejoinedAt - contAt} ms after the SIGCONT`);
    await publishing;
    const figures = await recover(rig, 'zombie', Date.now(), notes);
    figures.failedChecks = [...(figures.failedChecks ?? []), ...failed];
    figures.notes.push(...failed.map((x) => `CHECK FAILED: ${x}`));
    return figures;
  } finally {
    await closeRig(rig);
  }
}

export const ZOMBIE_SCENARIOS: FaultScenario[] = [
  {
    name: 'zombie',
    description:
      'two processors share a backlog and a paced stream; one is SIGSTOPped mid-batch past its 6 s session, the other takes its partitions and commits past it, then it is SIGCONTed: it must add nothing to any table or change topic (quick: about 1,300 records)',
    stopsServices: false,
    run,
  },
];
