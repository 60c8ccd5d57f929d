// Scale out and in under load: processor children join and leave the stage groups one at a time while
// a paced burst runs. Every change is an eager rebalance (kafkajs has no cooperative protocol): the
// scenario states the pause each one caused, and the tables must still equal the truth exactly.
import { setTimeout as sleep } from 'node:timers/promises';
import { changes as changeRows } from '../appointments/tables';
import { publishPaced } from '../bench/arena';
import { archiveOf, rowsOf } from '../conversions/store';
import type { FaultFigures } from './figures';
import {
  closeRig,
  openRig,
  recover,
  type Rig,
  type EventSetSpec,
  type FaultContext,
  type Instance,
} from './rig';
import { describeChange, longestGap, pausesOf, sampleApplied, startReady, type Change } from './scale';
import { untilStable } from './membership';
import type { FaultScenario } from './scenarios';

/** About 10,000 records, paced over 90 s: every membership change lands while events flow. */
const SET: EventSetSpec = { appointments: 800, leads: 1200, conversionsPerLead: 5, seed: 20261215 };
const BURST_MS = 90_000;
/** Time between changes: the groups settle and the stream runs at the new size for a while. */
const DWELL_MS = 8_000;

const scaleOutIn: FaultScenario = {
  name: 'scale-out-in',
  stopsServices: false,
  description:
    '1 → 3 → 1 processor children while a 90 s paced burst runs: two joins, then two SIGTERM leaves, one at a time; the pause each rebalance caused is in the notes',
  run: async (ctx: FaultContext): Promise<FaultFigures> => {
    const rig = await openRig(ctx, 'scale-out-in', SET);
    try {
      const notes: string[] = [];
      const first = rig.spawn();
      await first.ready;
      await untilStable(ctx.membership, rig.arena, 1);
      const sampler = sampleApplied(rig);
      const publishStart = Date.now();
      const publishing = publishPaced(
        ctx.kafka,
        rig.records,
        rig.records.length / (BURST_MS / 1000),
        () => false,
      );
      await sleep(DWELL_MS + 2_000);
      const changes: Change[] = [];
      const members: Instance[] = [first];
      const join = async (size: number) => {
        const c: Change = { what: `join ${size - 1} → ${size}`, at: Date.now() };
        members.push(await startReady(() => rig.spawn(), notes));
        c.stableAt = await untilStable(ctx.membership, rig.arena, size);
        changes.push(c);
        await sleep(DWELL_MS);
      };
      const leave = async (size: number) => {
        const c: Change = { what: `leave ${size + 1} → ${size} (SIGTERM)`, at: Date.now() };
        const i = members.pop()!;
        i.child.kill('SIGTERM');
        const code = await i.exit;
        if (code !== 0) notes.push(`the instance that left exited with code ${code}`);
        c.stableAt = await untilStable(ctx.membership, rig.arena, size);
        changes.push(c);
        await sleep(DWELL_MS);
      };
      await join(2);
      await join(3);
      await leave(2);
      await leave(1);
      const published = await publishing;
      const healedAt = Date.now();
      notes.push(
        `${published} records paced over ${Math.round((healedAt - publishStart) / 1000)} s; ${changes.length} membership changes while they flowed`,
      );
      const figures = await recover(rig, 'scale-out-in', healedAt, notes);
      if (figures.lost > 0 || figures.duplicates > 0) notes.push(...(await lossDetail(rig)));
      await sampler.stop();
      const normal = longestGap(sampler.samples, publishStart + 2_000, changes[0]!.at, rig.expected);
      notes.push(`longest gap in effects with no change under way: ${normal.ms} ms (sampled every 100 ms)`);
      for (const c of pausesOf(changes, sampler.samples, rig.expected)) notes.push(describeChange(c));
      return figures;
    } finally {
      await closeRig(rig);
    }
  },
};

/**
 * Where effects are missing, for the notes: the change rows against the truth, and the first short
 * conversion rows with their version, pending list and archive entries (counted or not).
 */
async function lossDetail(rig: Rig): Promise<string[]> {
  const db = rig.arena.db;
  const out = [`change rows ${await changeRows(db).countDocuments({})} of ${rig.truth.changeRows}`];
  const rows = await rowsOf(db).find({}).toArray();
  const byKey = new Map(rows.map((r) => [JSON.stringify([r.tenantId, r.leadId, r.conversionType]), r]));
  const short = [...rig.truth.conversions.values()].filter(
    (w) => (byKey.get(JSON.stringify([w.tenantId, w.leadId, w.conversionType]))?.count ?? 0) < w.count,
  );
  out.push(`${short.length} conversion rows short`);
  for (const want of short.slice(0, 3)) {
    const got = byKey.get(JSON.stringify([want.tenantId, want.leadId, want.conversionType]));
    // A scan, but of the fault suite's own arena after the run: never on the hot path.
    const archived = (await archiveOf(db).find({ entityId: want.leadId }).toArray()).filter(
      (a) => a.tenantId === want.tenantId && a.value.conversionType === want.conversionType,
    );
    out.push(
      `${want.leadId}/${want.conversionType}: want ${want.count}, row ${got?.count ?? 'missing'} ` +
        `(version ${got?.version ?? '-'}, pending ${JSON.stringify(got?.pending ?? [])}); archive ` +
        archived
          .map((a) => `${a.eventId}${(a as { counted?: boolean }).counted === false ? ' unmarked' : ''}`)
          .join(', '),
    );
  }
  return out;
}

export const SCALE_SCENARIOS: FaultScenario[] = [scaleOutIn];
