// The change topics under crashes, as the exactly-once issue measured them: 20,000 conversions with 5%
// upstream re-sends (and a few hundred appointment lifecycles) while the processor is SIGKILLed three
// times mid-stream. The tables must come out exact; the suite then reads both change topics with
// read_committed (`changes verify`) and reports duplicate and missing changes beside the tables' figures.
import { publishAll } from '../bench/arena';
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

/** 4,000 leads × 5 = 20,000 conversions, 5% re-sent; 300 appointments. */
const FULL: EventSetSpec = {
  appointments: 300,
  leads: 4000,
  conversionsPerLead: 5,
  seed: 20261221,
  duplicateShare: 0.05,
};

/** 1,000 conversions and 50 appointments, for a CI-sized look. */
const SMALL: EventSetSpec = { ...FULL, appointments: 50, leads: 200 };

/** Shares of the effects applied at which the three kills land. */
const KILLS = [0.2, 0.45, 0.7];

async function run(ctx: FaultContext): Promise<FaultFigures> {
  // FAULTS_CHANGES_LEADS sizes the run (5 conversions a lead) on a machine too busy for the full one.
  const leads = Number(process.env.FAULTS_CHANGES_LEADS) || undefined;
  const spec = { ...(ctx.quick ? SMALL : FULL), ...(leads ? { leads } : {}) };
  const rig = await openRig(ctx, 'changes-sigkill', spec);
  try {
    const notes: string[] = [];
    let instance = rig.spawn();
    await instance.ready;
    const publishing = publishAll(ctx.kafka, rig.records);
    const at: string[] = [];
    for (const share of KILLS) {
      const reached = await waitFor(async () => (await rig.applied()) >= rig.expected * share, 900_000);
      const applied = await rig.applied();
      if (!reached || applied >= rig.expected) {
        notes.push(
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
    return await recover(rig, 'changes-sigkill', healedAt, notes, 1_800_000);
  } finally {
    await closeRig(rig);
  }
}

export const CHANGES_SCENARIOS: FaultScenario[] = [
  {
    name: 'changes-sigkill',
    description:
      'the change topics under crashes: 20,000 conversions (5% upstream re-sends) and 300 appointments as a backlog, the processor SIGKILLed at 20%, 45% and 70% of the effects and replaced at once; the change topics are then read with read_committed (quick: 1,000 conversions)',
    stopsServices: false,
    run,
  },
];
