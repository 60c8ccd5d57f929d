// Fault scenarios 8 and 9: bad records at volume inside a normal event set (each dead-lettered with its
// reason while the partitions flow), and a committed offset that fell out of retention (the reset
// policy applies, and the skipped range is reported, never skipped silently).
import fs from 'node:fs';
import path from 'node:path';
import { ConfigResourceTypes, type Kafka, type Message } from 'kafkajs';
import { generate } from '../app/demo/generate';
import { loadProducer, publishAll, wireRecords } from '../bench/arena';
import { groundTruth, type BenchEvent } from '../bench/events';
import { HEADERS, headersToStrings } from '../producers/headers';
import { skippedRanges } from '../state/skipped-ranges';
import { dlqTopicName } from '../topology/define';
import type { FaultFigures } from './figures';
import {
  behindPartitions,
  closeRig,
  openRig,
  recover,
  waitFor,
  type EventSetSpec,
  type FaultContext,
  type Rig,
} from './rig';
import type { FaultScenario } from './scenarios';

const SET: EventSetSpec = { appointments: 400, leads: 600, conversionsPerLead: 5, seed: 20261308 };

/** The appointments input's max.message.bytes here: below the broker's 1 MiB, so "just over" is cheap. */
const TOPIC_MAX_BYTES = 262_144;
/** The dead-letter topics' limit the instances get: a just-under record's letter is sent header-only. */
const DLQ_MAX_BYTES = 131_072;
const BAD_PER_KIND = 100;
/** Confluent wire format: magic byte 0, then a 4-byte schema id no registry here has issued. */
const UNKNOWN_SCHEMA = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0]);

const DAY = 86_400_000;

/** Events of fresh entities (their own run id), on the rig's tenants, shaped as the rig's are. */
function freshEvents(rig: Rig, runId: string, spec: Omit<EventSetSpec, 'seed'>, seed: number): BenchEvent[] {
  const tenants = [...new Set(rig.events.flatMap((e) => (e.value ? [e.value.tenantId] : [])))];
  return generate({
    seed,
    runId,
    tenants: 3,
    appointments: spec.appointments,
    leads: spec.leads,
    conversionsPerLead: spec.conversionsPerLead,
    lateShare: 0,
    duplicateShare: 0,
    start: Date.now() - 30 * DAY,
  }).map((p): BenchEvent => {
    // The generator's tenant number, mapped onto the rig's tenants: an entity keeps one tenant.
    const n = Number(/-tenant-(\d+)$/.exec(p.value.tenantId)?.[1] ?? 0);
    const tenantId = tenants[n % tenants.length]!;
    return p.topic === 'appointments'
      ? { flow: 'appointments', key: p.key, value: { ...p.value, tenantId }, late: false, duplicate: false }
      : { flow: 'conversions', key: p.key, value: { ...p.value, tenantId }, late: false, duplicate: false };
  });
}

/** Good events added to the rig after it opened: the truth is recomputed over the whole set. */
function addToTruth(rig: Rig, extra: BenchEvent[]): void {
  rig.events.push(...extra);
  Object.assign(rig.truth, groundTruth(rig.events));
  let expected = rig.truth.changeRows;
  for (const r of rig.truth.conversions.values()) expected += r.count;
  rig.expected = expected;
}

/** Sends records one per request (a large one must not share a batch), murmur2-partitioned by key. */
async function sendEach(
  kafka: Kafka,
  topic: string,
  messages: Message[],
): Promise<{ sent: number; refused: string[] }> {
  const p = await loadProducer(kafka);
  const refused: string[] = [];
  let sent = 0;
  try {
    for (const m of messages) {
      try {
        await p.send({ topic, acks: -1, messages: [m] });
        sent++;
      } catch (err) {
        refused.push(err instanceof Error ? err.message : String(err));
      }
    }
  } finally {
    await p.disconnect();
  }
  return { sent, refused };
}

interface Letter {
  code: string;
  key: string;
  bytes: number;
  stored: string | undefined;
}

async function readLetters(kafka: Kafka, rig: Rig, count: number): Promise<Letter[]> {
  const out: Letter[] = [];
  const consumer = kafka.consumer({ groupId: `${rig.arena.prefix}.faults-bad-reader` });
  await consumer.connect();
  try {
    for (const stage of Object.values(rig.arena.stages)) {
      await consumer.subscribe({ topic: dlqTopicName(stage.name), fromBeginning: true });
    }
    await consumer.run({
      eachMessage: async ({ message }) => {
        const h = headersToStrings(message.headers);
        out.push({
          code: h[HEADERS.DLQ_CODE] ?? '?',
          key: message.key?.toString() ?? '',
          bytes: message.value?.length ?? 0,
          stored: h[HEADERS.DLQ_STORED],
        });
      },
    });
    await waitFor(async () => out.length >= count, 30_000);
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** Spawns an instance with extra settings in its environment (the rig's spawn reads process.env). */
function spawnWith(rig: Rig, env: Record<string, string>) {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return rig.spawn();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const badRecords: FaultScenario = {
  name: 'bad-records',
  stopsServices: false,
  description: `${3 * BAD_PER_KIND + 2} bad records interleaved with the event set: null keys, tombstones, unknown schema ids, one just under and one just over the topic's max.message.bytes (${TOPIC_MAX_BYTES}); plus valid events whose keys hold "." and "$", and a valid event just under the limit`,
  run: async (ctx) => {
    const rig = await openRig(ctx, 'bad-records', SET);
    try {
      return await runBadRecords(ctx, rig);
    } finally {
      await closeRig(rig);
    }
  },
};

async function runBadRecords(ctx: FaultContext, rig: Rig): Promise<FaultFigures> {
  const notes: string[] = [];
  const failed: string[] = [];
  const topic = rig.arena.input.appointments;
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: [{ name: 'max.message.bytes', value: String(TOPIC_MAX_BYTES) }],
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }

  // Valid events whose keys (appointment and lead ids) hold "." and "$": MongoDB _id may hold them,
  // and no stage builds a field path from a key, so they must apply like any other.
  const odd = freshEvents(
    rig,
    `${ctx.runId}.odd$key`,
    { appointments: 60, leads: 60, conversionsPerLead: 3 },
    7,
  );
  // A valid event just under the topic's limit: its free-text `source` carries the bulk.
  const bigId = `${ctx.runId}-big.appt$1`;
  const [seed] = freshEvents(
    rig,
    `${ctx.runId}-big`,
    { appointments: 1, leads: 0, conversionsPerLead: 0 },
    8,
  );
  if (seed?.flow !== 'appointments' || !seed.value) throw new Error('no appointment event to grow');
  const bigHeadroom = 4_096;
  const big: BenchEvent = {
    flow: 'appointments',
    key: bigId,
    value: { ...seed.value, appointmentId: bigId, eventId: `${bigId}-e0`, source: '' },
    late: false,
    duplicate: false,
  };
  const [bigProbe] = await wireRecords(ctx, rig.arena, [big]);
  big.value!.source = 's'.repeat(TOPIC_MAX_BYTES - bigHeadroom - bigProbe!.value!.length);
  addToTruth(rig, [...odd, big]);
  const [bigRecord] = await wireRecords(ctx, rig.arena, [big]);
  const oddRecords = await wireRecords(ctx, rig.arena, odd);

  // The bad ones, each under a key of its own so no real entity is parked behind them.
  const [anyValue] = rig.records;
  const nullKeys: Message[] = Array.from({ length: BAD_PER_KIND }, () => ({
    key: null,
    value: anyValue!.value,
  }));
  const tombstones: Message[] = Array.from({ length: BAD_PER_KIND }, (_, i) => ({
    key: `bad-tombstone-${i}`,
    value: null,
  }));
  const unknown: Message[] = Array.from({ length: BAD_PER_KIND }, (_, i) => ({
    key: `bad-schema-${i}`,
    value: Buffer.concat([UNKNOWN_SCHEMA, Buffer.from(`payload ${i}`)]),
  }));
  const padding = (n: number) => Buffer.alloc(n, 0x61);
  const underBad: Message = {
    key: 'bad-schema-big',
    value: Buffer.concat([UNKNOWN_SCHEMA, padding(TOPIC_MAX_BYTES - bigHeadroom - UNKNOWN_SCHEMA.length)]),
  };
  const over: Message = {
    key: 'bad-too-large',
    value: Buffer.concat([UNKNOWN_SCHEMA, padding(TOPIC_MAX_BYTES + 1 - UNKNOWN_SCHEMA.length)]),
  };
  const bad = [nullKeys, tombstones, unknown].flatMap((list) => list.map((m, i) => ({ m, i })));
  bad.sort((a, b) => a.i - b.i); // the kinds interleaved: one of each in turn

  const instance = spawnWith(rig, { KEYFLOW_DLQ_MAX_MESSAGE_BYTES: String(DLQ_MAX_BYTES) });
  await instance.ready;
  const good = [...rig.records, ...oddRecords];
  const chunk = Math.ceil(good.length / 4);
  const badChunk = Math.ceil(bad.length / 3);
  for (let c = 0; c < 3; c++) {
    await publishAll(ctx.kafka, good.slice(c * chunk, (c + 1) * chunk));
    const r = await sendEach(
      ctx.kafka,
      topic,
      bad.slice(c * badChunk, (c + 1) * badChunk).map((b) => b.m),
    );
    if (r.refused.length)
      failed.push(`${r.refused.length} bad records refused by the broker: ${r.refused[0]}`);
  }
  const large = await sendEach(ctx.kafka, topic, [
    { key: bigRecord!.key, value: bigRecord!.value, headers: bigRecord!.headers },
    underBad,
  ]);
  if (large.refused.length) failed.push(`a just-under record was refused: ${large.refused.join('; ')}`);
  const refusedOver = await sendEach(ctx.kafka, topic, [over]);
  if (refusedOver.refused.length === 1) {
    notes.push(
      `just over (${over.value!.length} bytes of value): the broker refused it at produce: ${refusedOver.refused[0]}`,
    );
  } else {
    failed.push('the just-over record was accepted by the broker');
  }
  // The last quarter of the good events comes after every bad record: it must apply promptly.
  const lastAt = Date.now();
  await publishAll(ctx.kafka, good.slice(3 * chunk));
  notes.push(
    `${good.length + 1} good records (${oddRecords.length} with "." and "$" in their keys, one of ${bigRecord!.value!.length} bytes) and ${bad.length + 2} bad ones published`,
  );

  const expectedCodes: Record<string, number> = {
    KEY_MISSING: BAD_PER_KIND,
    VALUE_MISSING: BAD_PER_KIND,
    SCHEMA_UNKNOWN: BAD_PER_KIND + 1,
  };
  const expectedDead = Object.values(expectedCodes).reduce((a, b) => a + b, 0);
  const f = await recover(rig, 'bad-records', lastAt, notes);
  notes.push(
    `the events published after the last bad record were all applied ${((f.recoverMs ?? NaN) / 1000).toFixed(1)} s after they were sent`,
  );

  const letters = await readLetters(ctx.kafka, rig, expectedDead);
  const byCode = new Map<string, number>();
  for (const l of letters) byCode.set(l.code, (byCode.get(l.code) ?? 0) + 1);
  for (const [code, n] of Object.entries(expectedCodes)) {
    if ((byCode.get(code) ?? 0) !== n)
      failed.push(`${code}: ${byCode.get(code) ?? 0} dead letters, expected ${n}`);
  }
  for (const [code, n] of byCode)
    if (!(code in expectedCodes)) failed.push(`${n} unexpected ${code} dead letters`);
  notes.push(`dead letters by reason: ${[...byCode].map(([c, n]) => `${c} ${n}`).join(', ')}`);
  const bigLetter = letters.find((l) => l.key === 'bad-schema-big');
  if (!bigLetter || bigLetter.bytes !== 0 || bigLetter.stored === undefined) {
    failed.push(`the just-under bad record's letter is not header-only: ${JSON.stringify(bigLetter)}`);
  } else {
    notes.push(
      `the just-under bad record's letter went header-only (over KEYFLOW_DLQ_MAX_MESSAGE_BYTES ${DLQ_MAX_BYTES}), pointing at ${bigLetter.stored}`,
    );
  }
  if (letters.some((l) => l.key.includes('$') || l.key.includes('.odd'))) {
    failed.push('a valid key with "." or "$" was dead-lettered');
  }
  return {
    ...f,
    expectedDeadLettered: expectedDead,
    failedChecks: failed,
    notes: [...notes, ...failed.map((x) => `CHECK FAILED: ${x}`)],
  };
}

const offsetRetention: FaultScenario = {
  name: 'offset-retention',
  stopsServices: false,
  description:
    'with the processor stopped, records past its committed offsets are published and deleted (DeleteRecords, as retention would); the next instance resumes by the reset policy and must report every skipped range',
  run: async (ctx) => {
    const rig = await openRig(ctx, 'offset-retention', SET);
    try {
      return await runOffsetRetention(ctx, rig);
    } finally {
      await closeRig(rig);
    }
  },
};

async function runOffsetRetention(ctx: FaultContext, rig: Rig): Promise<FaultFigures> {
  const notes: string[] = [];
  const failed: string[] = [];
  const { arena } = rig;
  const cut = Math.floor(rig.records.length * 0.6);
  await publishAll(ctx.kafka, rig.records.slice(0, cut));
  const first = rig.spawn();
  await first.ready;
  const caughtUp = await waitFor(async () => (await behindPartitions(ctx.kafka, arena)) === 0, 120_000);
  if (!caughtUp) failed.push('the first instance never committed to the end of the first part');
  first.child.kill('SIGTERM');
  await first.exit;

  // Fresh entities' records the stopped stages never read; then deleted, as retention would.
  const doomed = await wireRecords(
    ctx,
    arena,
    freshEvents(rig, `${ctx.runId}-doomed`, { appointments: 100, leads: 100, conversionsPerLead: 3 }, 9),
  );
  await publishAll(ctx.kafka, doomed);
  const admin = ctx.kafka.admin();
  await admin.connect();
  const expected: string[] = [];
  try {
    for (const flow of ['appointments', 'conversions'] as const) {
      const topic = arena.input[flow];
      const stage = arena.stages[flow].name;
      const ends = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({ groupId: arena.groups[flow], topics: [topic] });
      for (const e of ends) {
        const c = committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? '-1';
        // A partition never committed starts by the reset policy anyway: no committed offset fell out.
        if (Number(c) >= 0 && Number(c) < Number(e.high))
          expected.push(`${stage}|${topic}|${e.partition}|${c}-${e.high}`);
      }
      await admin.deleteTopicRecords({
        topic,
        partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })),
      });
    }
  } finally {
    await admin.disconnect();
  }
  const skippedExpected = expected.reduce((n, e) => {
    const [a, b] = e.split('|')[3]!.split('-');
    return n + Number(b) - Number(a);
  }, 0);
  notes.push(
    `${doomed.length} records deleted below the log start while no instance ran, over ${expected.length} partitions`,
  );

  await publishAll(ctx.kafka, rig.records.slice(cut));
  rig.spawn();
  const f = await recover(rig, 'offset-retention', Date.now(), notes);

  const ranges = await skippedRanges(arena.db);
  const got = ranges.map((r) => `${r.stage}|${r.topic}|${r.partition}|${r.from}-${r.to}`).sort();
  if (JSON.stringify(got) !== JSON.stringify([...expected].sort())) {
    failed.push(
      `skipped ranges recorded ${JSON.stringify(got)}, expected ${JSON.stringify(expected.sort())}`,
    );
  }
  const counted = ranges.reduce((n, r) => n + r.count, 0);
  notes.push(`skipped ranges recorded: ${ranges.length}, ${counted} offsets (expected ${skippedExpected})`);
  const log = fs.readFileSync(path.join(ctx.resultsDir, 'offset-retention.instances.log'), 'utf8');
  const logged = log.split('\n').filter((l) => l.includes('fell out of retention')).length;
  if (logged < expected.length) failed.push(`${logged} error lines for ${expected.length} skipped ranges`);
  notes.push(
    `${logged} error lines name a skipped range; the alert KeyflowOffsetsSkipped fires on keyflow_offsets_skipped_total`,
  );
  return { ...f, failedChecks: failed, notes: [...notes, ...failed.map((x) => `CHECK FAILED: ${x}`)] };
}

export const BAD_SCENARIOS: FaultScenario[] = [badRecords, offsetRetention];
