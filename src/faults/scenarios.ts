// The fault scenarios. Each opens a rig with a known event set (upstream duplicates and late events
// included), injects its fault mid-stream with real signals to real processes, and hands the rig to
// `recover`, which waits for the tables to equal the reducers' truth and measures what it took.
import { setTimeout as sleep } from 'node:timers/promises';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { prng } from '../app/demo/generate';
import { appointmentEventValue } from '../appointments/schemas';
import { conversionEventSchema } from '../conversions/schemas';
import { subjectOf } from '../schemas/codec';
import { publishAll, publishPaced } from '../bench/arena';
import type { FaultFigures } from './figures';
import { groupMembers } from './membership';
import { BAD_SCENARIOS } from './scenarios-bad';
import { CHANGES_SCENARIOS } from './scenarios-changes';
import {
  closeRig,
  killInstance,
  openRig,
  recover,
  restartService,
  signalService,
  waitFor,
  type EventSetSpec,
  type FaultContext,
  type Rig,
} from './rig';
import { NET_SCENARIOS } from './scenarios-net';
import { SCALE_SCENARIOS } from './scenarios-scale';
import { ZOMBIE_SCENARIOS } from './scenarios-zombie';

export interface FaultScenario {
  name: string;
  /** What it does, for `--help` and the README. */
  description: string;
  /** It stops or cuts a service of the stack, so it may run only on the suite's own local stack. */
  stopsServices: boolean;
  /** Part of `keyflow faults quick`, the CI-sized subset that `npm test` runs (with `ctx.quick` set). */
  quick?: boolean;
  run(ctx: FaultContext): Promise<FaultFigures>;
}

/** About 5,000 records: 400 appointment lifecycles and 600 leads' conversions. */
const SET: EventSetSpec = { appointments: 400, leads: 600, conversionsPerLead: 5, seed: 20261213 };

/** About 1,300 records, for the CI-sized runs of `keyflow faults quick`. */
const SMALL: EventSetSpec = { appointments: 100, leads: 160, conversionsPerLead: 5, seed: 20261215 };

/** About 26,000 records: a backlog that takes the processor long enough to be cut in the middle. */
const BACKLOG: EventSetSpec = { appointments: 2000, leads: 3000, conversionsPerLead: 5, seed: 20261214 };

async function withRig(
  ctx: FaultContext,
  label: string,
  body: (rig: Rig) => Promise<FaultFigures>,
  spec: EventSetSpec = BACKLOG,
): Promise<FaultFigures> {
  const rig = await openRig(ctx, label, spec);
  try {
    return await body(rig);
  } finally {
    await closeRig(rig);
  }
}

/** Resolves once a share of the effects is in the tables: the fault then lands mid-stream. */
async function untilShare(rig: Rig, share: number): Promise<void> {
  const ok = await waitFor(async () => (await rig.applied()) >= rig.expected * share, 120_000);
  if (!ok) throw new Error(`${share * 100}% of the effects never arrived before the fault`);
}

async function midStream(rig: Rig, notes: string[], what: string): Promise<void> {
  const applied = await rig.applied();
  notes.push(`${what} with ${applied} of ${rig.expected} effects applied`);
  if (applied >= rig.expected) notes.push(`${what} landed after the stream was done: not a mid-stream fault`);
}

const processorKills: FaultScenario = {
  name: 'processor-sigkill',
  description:
    'ten SIGKILLs of the running processor child, each a seeded random 0.3-2.3 s after it was ready, while a 75 s burst is published; each killed instance is replaced at once (quick: two kills in an 8 s burst)',
  stopsServices: false,
  quick: true,
  run: (ctx) =>
    withRig(
      ctx,
      'processor-sigkill',
      async (rig) => {
        const notes: string[] = [];
        let instance = rig.spawn();
        await instance.ready;
        const kills = ctx.quick ? 2 : 10;
        const burstMs = ctx.quick ? 8_000 : 75_000;
        let done = false;
        const publishing = publishPaced(
          ctx.kafka,
          rig.records,
          rig.records.length / (burstMs / 1000),
          () => false,
        ).then((n) => {
          done = true;
          return n;
        });
        // Each kill lands a seeded random 0.3-2.3 s after the instance reported READY: always on a
        // running processor, never on one still starting.
        const rand = prng(13);
        const start = Date.now();
        const at: number[] = [];
        let landed = 0;
        for (let k = 0; k < kills; k++) {
          await instance.ready;
          await sleep(300 + rand() * 2_000);
          at.push(Date.now() - start);
          if ((await rig.applied()) < rig.expected && !done) landed++;
          await killInstance(instance);
          instance = rig.spawn();
        }
        await instance.ready;
        // Recovery counts from the later of the last replacement ready and the burst's end: a client
        // whose replacements join fast finishes its kills early in the burst, and the burst's remaining
        // seconds are not recovery (platformatic read 53.6 s here for that alone).
        await publishing;
        const healedAt = Date.now();
        notes.push(
          `kills at ${at.map((t) => (t / 1000).toFixed(1)).join(', ')} s into the burst; ${landed} of ${kills} while it was still being published and applied`,
        );
        return recover(rig, 'processor-sigkill', healedAt, notes);
      },
      ctx.quick ? SMALL : SET,
    ),
};

const processorSigterm: FaultScenario = {
  name: 'processor-sigterm',
  description:
    'SIGTERM to the processor child mid-batch: it drains and exits 0, leaves both stage groups, and a new instance finishes the stream exactly (quick: a 5,000-record backlog)',
  stopsServices: false,
  quick: true,
  run: (ctx) =>
    withRig(
      ctx,
      'processor-sigterm',
      async (rig) => {
        const notes: string[] = [];
        await publishAll(ctx.kafka, rig.records);
        const first = rig.spawn();
        await first.ready;
        await untilShare(rig, 0.1);
        await midStream(rig, notes, 'SIGTERM');
        const at = Date.now();
        first.child.kill('SIGTERM');
        const code = await first.exit;
        const exitedMs = Date.now() - at;
        await waitFor(async () => (await groupMembers(ctx.membership, rig.arena)) === 0, 60_000);
        const leftMs = Date.now() - at;
        notes.push(
          `exit code ${code}; drain ${first.drainedMs ?? '?'} ms, process gone after ${exitedMs} ms, no member left in either group after ${leftMs} ms`,
        );
        const second = rig.spawn();
        await second.ready;
        return recover(rig, 'processor-sigterm', Date.now(), notes);
      },
      ctx.quick ? SET : BACKLOG,
    ),
};

/** The field the suite's second schema version adds (with a default, so BACKWARD accepts it). */
const NEWER_FIELD = 'faultSuiteNote';

/**
 * Registers a second version of both input schemas (one added field with a default) and re-encodes
 * records `from` on with it, so a processor has to fetch that schema id from the registry before it can
 * decode them: with the registry down, they wait. Returns the two new schema ids.
 */
async function encodeWithNewerSchema(rig: Rig, from: number): Promise<number[]> {
  const reg = new SchemaRegistry({ host: rig.ctx.config.schemaRegistryUrl, clientId: 'keyflow-faults' });
  const ids = new Map<string, number>();
  for (const [flow, base] of [
    ['appointments', appointmentEventValue.avro],
    ['conversions', conversionEventSchema.avro],
  ] as const) {
    const topic = rig.arena.input[flow];
    const avro = base as unknown as { fields: object[] };
    const newer = { ...avro, fields: [...avro.fields, { name: NEWER_FIELD, type: 'string', default: '' }] };
    const { id } = await reg.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(newer) },
      { subject: subjectOf(topic) },
    );
    ids.set(topic, id);
  }
  for (let i = from; i < rig.records.length; i++) {
    const record = rig.records[i]!;
    const value = rig.events[i]!.value;
    if (value === null) continue;
    record.value = await reg.encode(ids.get(record.topic)!, { ...value, [NEWER_FIELD]: 'v2' });
  }
  return [...ids.values()];
}

const registryDown: FaultScenario = {
  name: 'registry-down',
  stopsServices: true,
  description:
    'the schema registry stopped (by its pid file) for 60 s while a running processor gets the last three quarters of the stream, written with a schema version it has not fetched yet: they wait, then apply',
  run: (ctx) =>
    withRig(ctx, 'registry-down', async (rig) => {
      const notes: string[] = [];
      const quarter = Math.floor(rig.records.length / 4);
      const ids = await encodeWithNewerSchema(rig, quarter);
      notes.push(
        `records from ${quarter} on written with schema ids ${ids.join(', ')}, unknown to the processor`,
      );
      await publishAll(ctx.kafka, rig.records.slice(0, quarter));
      const instance = rig.spawn();
      await instance.ready;
      await untilShare(rig, 0.1);
      const downAt = Date.now();
      await signalService(ctx, 'registry', 'SIGTERM');
      await midStream(rig, notes, 'registry stopped');
      await publishAll(ctx.kafka, rig.records.slice(quarter));
      await sleep(Math.max(0, downAt + 60_000 - Date.now()));
      notes.push(`${await rig.applied()} of ${rig.expected} effects applied while the registry was down`);
      await restartService(ctx, 'registry');
      notes.push(`registry down ${((Date.now() - downAt) / 1000).toFixed(1)} s`);
      return recover(rig, 'registry-down', Date.now(), notes);
    }),
};

const registryDownRestart: FaultScenario = {
  name: 'registry-down-restart',
  stopsServices: true,
  description:
    'the registry stopped for 60 s and the processor SIGKILLed and started again during the outage, so it has no schema cached: its events must wait for the registry',
  run: (ctx) =>
    withRig(ctx, 'registry-down-restart', async (rig) => {
      const notes: string[] = [];
      await publishAll(ctx.kafka, rig.records);
      const first = rig.spawn();
      await first.ready;
      await untilShare(rig, 0.1);
      const downAt = Date.now();
      await signalService(ctx, 'registry', 'SIGTERM');
      await killInstance(first);
      await midStream(rig, notes, 'registry stopped and processor SIGKILLed');
      const second = rig.spawn();
      const outcome = await Promise.race([
        second.ready.then(() => 'ready'),
        second.exit.then((code) => `exited with code ${code}`),
        sleep(Math.max(0, downAt + 60_000 - Date.now())).then(() => 'still starting'),
      ]);
      notes.push(`the instance started during the outage: ${outcome}`);
      await sleep(Math.max(0, downAt + 60_000 - Date.now()));
      notes.push(`${await rig.applied()} of ${rig.expected} effects applied while the registry was down`);
      await restartService(ctx, 'registry');
      notes.push(`registry down ${((Date.now() - downAt) / 1000).toFixed(1)} s`);
      return recover(rig, 'registry-down-restart', Date.now(), notes);
    }),
};

/** A service of the stack stopped by `signal` once 10% of the backlog is applied, down `downMs`, started again. */
function serviceFault(
  name: string,
  service: 'kafka' | 'mongo',
  signal: NodeJS.Signals,
  downMs: number,
  description: string,
): FaultScenario {
  return {
    name,
    description,
    stopsServices: true,
    run: (ctx) =>
      withRig(ctx, name, async (rig) => {
        const notes: string[] = [];
        await publishAll(ctx.kafka, rig.records);
        const instance = rig.spawn();
        await instance.ready;
        await untilShare(rig, 0.1);
        await midStream(rig, notes, `${service} ${signal}`);
        const stopMs = await signalService(ctx, service, signal);
        const downAt = Date.now();
        if (downMs > 0) await sleep(downMs);
        await restartService(ctx, service);
        notes.push(
          `${service} stopped in ${stopMs} ms, answering again ${((Date.now() - downAt) / 1000).toFixed(1)} s after`,
        );
        return recover(rig, name, Date.now(), notes);
      }),
  };
}

export const SCENARIOS: FaultScenario[] = [
  processorKills,
  processorSigterm,
  registryDown,
  registryDownRestart,
  serviceFault(
    'broker-sigkill',
    'kafka',
    'SIGKILL',
    10_000,
    'the Kafka broker SIGKILLed mid-stream and started again after 10 s',
  ),
  serviceFault(
    'broker-restart',
    'kafka',
    'SIGTERM',
    0,
    'a clean broker restart (SIGTERM, then start) mid-stream',
  ),
  serviceFault(
    'mongo-sigkill',
    'mongo',
    'SIGKILL',
    0,
    'the Mongo-protocol server SIGKILLed mid-batch and started again at once',
  ),
  ...BAD_SCENARIOS,
  ...NET_SCENARIOS,
  ...SCALE_SCENARIOS,
  ...CHANGES_SCENARIOS,
  ...ZOMBIE_SCENARIOS,
];
