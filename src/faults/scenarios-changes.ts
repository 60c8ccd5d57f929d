// The change topics under crashes, as the exactly-once issue measured them: 20,000 conversions and
// 2,000 appointment lifecycles with 5% upstream re-sends while the processor is SIGKILLed three times
// mid-stream, in the suite's delivery guarantee (exactly-once unless `--guarantee at-least-once`). The
// tables must come out exact; the suite then reads both change topics with read_committed (`changes
// verify`), and the scenario passes only with no duplicate and no missing change on either.
import { publishPaced } from '../bench/arena';
import type { FaultFigures } from './figures';
import {
  closeRig,
  killInstance,
  openRig,
  recover,
  waitFor,
  type EventSetSpec,
  type FaultContext,
} from './rig';
import type { FaultScenario } from './scenarios';

/** 4,000 leads × 5 = 20,000 conversions and about 5,000 appointment events, 5% re-sent. */
const FULL: EventSetSpec = {
  appointments: 2000,
  leads: 4000,
  conversionsPerLead: 5,
  seed: 20261221,
  duplicateShare: 0.05,
};

/**
 * 2,500 conversions and 300 appointments (about 800 events): the CI-sized run the real-stack test
 * uses, still long enough for three kills to land mid-stream.
 */
const SMALL: EventSetSpec = { ...FULL, appointments: 300, leads: 500 };

/** Shares of the effects applied at which the three kills land. */
const KILLS = [0.2, 0.45, 0.7];

async function run(ctx: FaultContext): Promise<FaultFigures> {
  // FAULTS_CHANGES_LEADS sizes the run (5 conversions a lead) on a machine too busy for the full one.
  const leads = Number(process.env.FAULTS_CHANGES_LEADS) || undefined;
  const spec = { ...(ctx.quick ? SMALL : FULL), ...(leads ? { leads } : {}) };
  const rig = await openRig(ctx, 'changes-sigkill', spec);
  try {
    const notes: string[] = [];
    const failed: string[] = [];
    let instance = rig.spawn();
    await instance.ready;
    // Paced (45 s quick, 90 s full: longer than three kills' recoveries, which on a KIP-848 group each
    // wait out the dead member's 6 s session), so the processor can never run ahead of the stream: each kill lands at its share of the
    // effects while the rest is still being published. Published at once, a fast processor drained the
    // CI-sized set between two polls and the last kill landed after the last effect.
    const publishing = publishPaced(
      ctx.kafka,
      rig.records,
      rig.records.length / (ctx.quick ? 45 : 90),
      () => false,
    );
    const at: string[] = [];
    for (const share of KILLS) {
      const reached = await waitFor(async () => (await rig.applied()) >= rig.expected * share, 900_000);
      const applied = await rig.applied();
      // A kill after the last effect tests nothing: the scenario then fails rather than pass idle.
      if (!reached || applied >= rig.expected) {
        failed.push(
          `a kill meant for ${share * 100}% landed at ${applied} of ${rig.expected}: not mid-stream`,
        );
      }
      at.push(`${applied}`);
      await killInstance(instance);
      instance = rig.spawn();
      await instance.ready;
    }
    const healedAt = Date.now();
    await publishing;
    notes.push(`SIGKILLs with ${at.join(', ')} of ${rig.expected} effects applied`);
    const figures = await recover(rig, 'changes-sigkill', healedAt, notes, 1_800_000);
    figures.failedChecks = [...(figures.failedChecks ?? []), ...failed];
    figures.notes.push(...failed.map((x) => `CHECK FAILED: ${x}`));
    return figures;
  } finally {
    await closeRig(rig);
  }
}

export const CHANGES_SCENARIOS: FaultScenario[] = [
  {
    name: 'changes-sigkill',
    description:
      'the change topics under crashes: 20,000 conversions and 2,000 appointments (5% upstream re-sends) as a backlog, the processor SIGKILLed at 20%, 45% and 70% of the effects and replaced at once; both change topics are then read with read_committed and must hold each change once (quick: 2,500 conversions, 300 appointments)',
    stopsServices: false,
    run,
  },
];
