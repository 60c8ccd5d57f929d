// Three of the baselines every pipeline figure is divided by, measured in the same run on the same
// event set: `passthrough` (consume → produce, no work: the Kafka ceiling), `storeCeiling` (the same
// writes as unordered bulk upserts straight into the store: the Mongo ceiling) and `incumbent` (the
// seed's design: one handler per event doing every read and write in turn, no retries).
import { kafkajsClient } from '../kafka/kafkajs-client';
import type { AnyBulkWriteOperation } from 'mongodb';
import type { Consumer, ConsumerRunConfig } from 'kafkajs';
import { changeIdOf, rowOf } from '../appointments/decide';
import { reduce, type AppointmentState } from '../appointments/reducer';
import { APPOINTMENTS, APPOINTMENT_CHANGES, APPOINTMENT_EVENTS } from '../appointments/tables';
import { archiveIdOf, rowIdOf, totalsOf } from '../conversions/reducer';
import { ARCHIVE, ROWS } from '../conversions/store';
import type { ConversionEvent } from '../conversions/schemas';
import { headersToStrings } from '../producers/headers';
import { KeyedProducer } from '../producers/producer';
import type { WireRecord } from '../producers/types';
import { runBatch } from '../consumers/batch';
import { RUNNER_DEFAULTS } from '../consumers/options';
import type { BatchStageSpec, StageEvent } from '../topology/types';
import {
  closeArena,
  joinedFlag,
  offer,
  openArena,
  publishAll,
  sentAtOf,
  Tracker,
  wireRecords,
  withInjectedFailures,
  type Arena,
  type BenchContext,
} from './arena';
import { checkTables } from './correctness';
import type { BenchEvent } from './events';
import { measurementOf, phaseLabel, type RunSpec } from './measure';
import { LatencyRecorder } from './stats';
import type { Measurement } from './types';

/** A document of the benchmark's writes: string ids, like every Keyflow table. */
type StoreDoc = { _id: string } & Record<string, unknown>;

async function endOffsets(ctx: BenchContext, topics: string[]): Promise<number> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    let n = 0;
    for (const t of topics)
      for (const p of await admin.fetchTopicOffsets(t)) n += Number(p.high) - Number(p.low);
    return n;
  } finally {
    await admin.disconnect();
  }
}

interface ConsumingRun {
  arena: Arena;
  producer: KeyedProducer;
  tracker: Tracker;
  records: WireRecord[];
}

/**
 * The frame both consuming baselines share: a fresh arena, the set encoded (and published as a
 * backlog in max mode), a consumer group of their own on the two inputs run by `handle`, the load
 * offered, then `conclude` with whether the tables or outputs are to be checked. Removes it all after.
 */
async function consumingBaseline(
  ctx: BenchContext,
  spec: RunSpec,
  name: 'passthrough' | 'incumbent',
  handle: (run: ConsumingRun) => ConsumerRunConfig,
  conclude: (run: ConsumingRun, check: boolean) => Promise<{ correct: boolean | null; notes: string[] }>,
): Promise<Measurement> {
  const arena = await openArena(ctx, name);
  const producer = new KeyedProducer(kafkajsClient(ctx.kafka), ctx.codec);
  let consumer: Consumer | undefined;
  try {
    const records = await wireRecords(ctx, arena, spec.events);
    if (spec.mode === 'max') await publishAll(ctx.kafka, records);
    await producer.connect();
    const run: ConsumingRun = { arena, producer, tracker: new Tracker(records.length), records };
    consumer = ctx.kafka.consumer({ groupId: `${arena.prefix}.${name}`, maxWaitTimeInMs: 250 });
    const joined = joinedFlag(consumer);
    await consumer.connect();
    await consumer.subscribe({
      topics: [arena.input.appointments, arena.input.conversions],
      fromBeginning: true,
    });
    ctx.progress.phase(phaseLabel(name, spec), records.length);
    await consumer.run(handle(run));
    const finished = await offer(ctx, spec, records, run.tracker, joined);
    await consumer.disconnect();
    consumer = undefined;
    const { correct, notes } = await conclude(run, spec.check && finished);
    return measurementOf(name, spec, run.tracker, finished, { correct, notes });
  } finally {
    await consumer?.disconnect().catch(() => undefined);
    await producer.close().catch(() => undefined);
    await closeArena(ctx, arena);
  }
}

/** kafkajs consume → produce of the same bytes, batch by batch, with the pipeline's producer settings. */
export function runPassthrough(ctx: BenchContext, spec: RunSpec): Promise<Measurement> {
  return consumingBaseline(
    ctx,
    spec,
    'passthrough',
    ({ arena, producer, tracker }) => {
      const outputOf = new Map([
        [arena.input.appointments, arena.output.appointments],
        [arena.input.conversions, arena.output.conversions],
      ]);
      return {
        partitionsConsumedConcurrently: 4,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
          const out: WireRecord[] = batch.messages.map((m) => ({
            topic: outputOf.get(batch.topic)!,
            key: m.key?.toString() ?? '',
            value: m.value,
            headers: headersToStrings(m.headers),
            eventId: '',
          }));
          await producer.sendNow(out);
          const now = Date.now();
          for (const m of batch.messages)
            tracker.done(`${batch.topic}:${batch.partition}:${m.offset}`, sentAtOf(m.headers), now);
          resolveOffset(batch.lastOffset());
          await commitOffsetsIfNecessary();
        },
      };
    },
    async ({ arena, records }, check) => {
      if (!check) return { correct: null, notes: [] };
      const copied = await endOffsets(ctx, [arena.output.appointments, arena.output.conversions]);
      const correct = copied >= records.length;
      return {
        correct,
        notes: correct ? [] : [`${copied} of ${records.length} records reached the output topics`],
      };
    },
  );
}

/**
 * The writes the pipeline makes for each event (archive, change row and appointment; archive and
 * conversion row), with the values it would write, computed in memory before the clock starts.
 */
export function storeWrites(
  events: readonly BenchEvent[],
  now: number,
): Map<string, AnyBulkWriteOperation<StoreDoc>[]> {
  const ops = new Map<string, AnyBulkWriteOperation<StoreDoc>[]>([
    [APPOINTMENT_EVENTS, []],
    [APPOINTMENT_CHANGES, []],
    [APPOINTMENTS, []],
    [ARCHIVE, []],
    [ROWS, []],
  ]);
  const push = (c: string, op: AnyBulkWriteOperation<StoreDoc>) => ops.get(c)!.push(op);
  const states = new Map<string, { state: AppointmentState; version: number }>();
  const rows = new Map<string, ConversionEvent[]>();
  for (const e of events) {
    if (e.value === null) continue;
    const v = e.value;
    const archived = {
      entityId: e.key,
      tenantId: v.tenantId,
      occurredAt: v.occurredAt,
      arrivedAt: now,
      topic: e.flow,
      partition: 0,
      offset: 0,
    };
    if (e.flow === 'appointments') {
      const before = states.get(e.key);
      const r = reduce(before?.state ?? null, e.value);
      const version = (before?.version ?? 0) + 1;
      states.set(e.key, { state: r.state, version });
      const { _id, ...row } = rowOf(e.value, r, before?.version ?? 0);
      push(APPOINTMENT_EVENTS, {
        updateOne: {
          filter: { _id: changeIdOf(v) },
          update: { $setOnInsert: { ...archived, eventId: v.eventId, value: v } },
          upsert: true,
        },
      });
      push(APPOINTMENT_CHANGES, { updateOne: { filter: { _id }, update: { $set: row }, upsert: true } });
      push(APPOINTMENTS, {
        updateOne: { filter: { _id: e.key }, update: { $set: { ...r.state, version } }, upsert: true },
      });
    } else {
      const c = e.value;
      const id = rowIdOf(c);
      const list = rows.get(id) ?? [];
      list.push(c);
      rows.set(id, list);
      const totals = totalsOf(list)!;
      push(ARCHIVE, {
        updateOne: {
          filter: { _id: archiveIdOf(c) },
          update: {
            $setOnInsert: {
              ...archived,
              eventId: c.eventId,
              value: { conversionType: c.conversionType, amount: c.amount },
            },
          },
          upsert: true,
        },
      });
      push(ROWS, {
        updateOne: {
          filter: { _id: id },
          update: {
            $set: {
              tenantId: c.tenantId,
              leadId: c.leadId,
              conversionType: c.conversionType,
              ...totals,
              updatedAt: now,
            },
          },
          upsert: true,
        },
      });
    }
  }
  return ops;
}

/** One way of sending the store's writes: how many bulk calls in flight, and how many operations per call. */
export interface CeilingShape {
  inFlight: number;
  perCall: number;
}

/**
 * The shapes the store ceiling tries, keeping the fastest: never fewer calls in flight than the
 * partitions the pipeline consumes at once (each of its deliveries has its own bulk calls out), and
 * twice as many; calls of 250 and of 1,000 operations. The ceiling is then the store's best rate at
 * the pipeline's own concurrency or above, not a rate of one call at a time that the pipeline outruns.
 */
export function ceilingShapes(partitionsAtOnce: number): CeilingShape[] {
  const p = Math.max(1, partitionsAtOnce);
  return [p, 2 * p].flatMap((inFlight) => [250, 1000].map((perCall) => ({ inFlight, perCall })));
}

/**
 * Every write cut into calls of at most `perCall` operations, the collections taken in turn, so calls
 * in flight together touch different collections, as the pipeline's concurrent deliveries do.
 */
export function bulkCalls<T>(ops: ReadonlyMap<string, readonly T[]>, perCall: number): [string, T[]][] {
  const queues = [...ops].map(([c, list]) => {
    const calls: [string, T[]][] = [];
    for (let i = 0; i < list.length; i += perCall) calls.push([c, list.slice(i, i + perCall)]);
    return calls;
  });
  const out: [string, T[]][] = [];
  for (let round = 0; queues.some((q) => round < q.length); round++)
    for (const q of queues) if (round < q.length) out.push(q[round]!);
  return out;
}

/** Runs `calls` with `inFlight` of them outstanding at every moment, until done or out of time. */
export async function sendBulkCalls<T>(
  calls: readonly T[],
  inFlight: number,
  send: (call: T, index: number) => Promise<void>,
  more: () => boolean,
): Promise<number> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < calls.length && more()) {
      const index = next++;
      await send(calls[index]!, index);
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, inFlight) }, worker));
  return done;
}

/**
 * Unordered bulk upserts of every write straight into the store, in each of `ceilingShapes`, on
 * emptied collections each time; the fastest shape is the store's ceiling.
 */
export async function runStoreCeiling(ctx: BenchContext, spec: RunSpec): Promise<Measurement> {
  const arena = await openArena(ctx, 'store');
  try {
    const real = spec.events.filter((e) => e.value !== null);
    const ops = storeWrites(real, Date.now());
    const writes = [...ops.values()].reduce((n, l) => n + l.length, 0);
    const expected = new Map(
      [...ops].map(([c, list]) => [
        c,
        new Set(
          list.map((o) =>
            JSON.stringify((o as { updateOne: { filter: { _id: unknown } } }).updateOne.filter._id),
          ),
        ).size,
      ]),
    );
    const tries: { shape: CeilingShape; tracker: Tracker; done: number; elapsed: number; rate: number }[] =
      [];
    const notes: string[] = [];
    let correct: boolean | null = true;
    for (const shape of ceilingShapes(RUNNER_DEFAULTS.partitionsAtOnce)) {
      if (ctx.aborted() || (tries.length > 0 && Date.now() >= spec.until)) break;
      await Promise.all([...ops.keys()].map((c) => arena.db.collection(c).deleteMany({})));
      const calls = bulkCalls(ops, shape.perCall);
      const tracker = new Tracker(calls.length);
      const latency = new LatencyRecorder();
      ctx.progress.phase(`storeCeiling max, ${shape.inFlight} in flight × ${shape.perCall}`, calls.length);
      const started = Date.now();
      await sendBulkCalls(
        calls,
        shape.inFlight,
        async ([c, list], index) => {
          const t0 = Date.now();
          await arena.db.collection<StoreDoc>(c).bulkWrite(list, { ordered: false });
          latency.add(Date.now() - t0);
          tracker.done(`${index}`);
          ctx.progress.tick(tracker.completed);
        },
        () => !ctx.aborted() && Date.now() < spec.until,
      );
      const elapsed = Math.max(1, Date.now() - started);
      // Cut short, only the events whose writes all landed count; approximated by the share of calls done.
      const done = tracker.finished
        ? real.length
        : Math.floor((real.length * tracker.completed) / calls.length);
      const rate = Math.round(done / (elapsed / 1000));
      tries.push({ shape, tracker, done, elapsed, rate });
      notes.push(
        `${shape.inFlight} in flight × ${shape.perCall} per call: ${rate} events/s, ${calls.length} calls, ` +
          `per-call latency ${JSON.stringify(latency.summary())}`,
      );
      if (!tracker.finished) correct = null;
      else if (correct !== null) {
        for (const [c, n] of expected) {
          const got = await arena.db.collection(c).countDocuments({});
          if (got !== n) {
            correct = false;
            notes.push(`${shape.inFlight} × ${shape.perCall}: ${c} holds ${got} document(s), ${n} written`);
          }
        }
      }
    }
    const best = [...tries].sort((a, b) => b.rate - a.rate)[0];
    if (!best) {
      return measurementOf('storeCeiling', spec, new Tracker(1), false, {
        correct: null,
        notes: ['interrupted before its first try'],
        throughput: 0,
      });
    }
    notes.unshift(
      `${writes} writes for ${real.length} events; the best of ${tries.length} shapes is kept ` +
        `(${best.shape.inFlight} in flight × ${best.shape.perCall} per call)`,
    );
    const m = measurementOf('storeCeiling', spec, best.tracker, best.tracker.finished, {
      correct: spec.check ? correct : null,
      notes,
      throughput: best.rate,
    });
    return { ...m, events: real.length, completed: best.done, elapsedMs: best.elapsed, latency: null };
  } finally {
    await closeArena(ctx, arena);
  }
}

/** Runs an event through a stage's actions one after the other and sends what it emits, awaiting each. */
export async function runActions(
  spec: BatchStageSpec,
  event: StageEvent,
  ctx: { db: import('mongodb').Db; producer: KeyedProducer },
): Promise<{ outOfOrder: boolean }> {
  const actx = { stage: spec.name, db: ctx.db, now: Date.now };
  // The stage's own read → decide → write, for a batch of one: what a per-event system does.
  const [decision] = await runBatch(spec.handler, [event], actx);
  if (decision!.kind === 'failed') throw decision!.error;
  if (decision!.kind !== 'done') throw new Error('a batch of one cannot be held');
  for (const [i, o] of decision!.emit.entries()) {
    const cause = {
      eventId: event.eventId,
      stage: spec.name,
      traceId: event.traceId,
      attempt: event.attempt,
      tenantId: event.tenantId,
    };
    await ctx.producer.sendNow([
      await ctx.producer.prepare(
        { topic: o.topic, key: o.key, value: o.value, occurredAt: o.occurredAt },
        cause,
        i,
      ),
    ]);
  }
  return { outOfOrder: decision!.outOfOrder };
}

/** The event a handler sees, built from a decoded value the way the runner would. */
export function stageEvent(
  spec: BatchStageSpec,
  key: string,
  value: unknown,
  where: { topic: string; partition: number; offset: string; attempt: number },
): StageEvent {
  return {
    key,
    value,
    eventId: spec.eventId?.(value) ?? key,
    occurredAt: spec.occurredAt?.(value),
    tenantId: spec.tenantId?.(value),
    traceId: '0'.repeat(32),
    headers: {},
    consumedAt: Date.now(),
    ...where,
  };
}

/** The seed's design: eachMessage, one partition at a time, every action awaited in turn, errors logged and dropped. */
export function runIncumbent(ctx: BenchContext, spec: RunSpec): Promise<Measurement> {
  let lost = 0;
  return consumingBaseline(
    ctx,
    spec,
    'incumbent',
    ({ arena, producer, tracker }) => {
      const stageOf = new Map(
        [arena.stages.appointments, arena.stages.conversions].map((s) => [
          s.inputs[0]!,
          withInjectedFailures(s, ctx.set),
        ]),
      );
      return {
        eachMessage: async ({ topic, partition, message }) => {
          const pos = `${topic}:${partition}:${message.offset}`;
          const sentAt = sentAtOf(message.headers);
          try {
            const stage = stageOf.get(topic)!;
            const { value } = await ctx.codec.decode(topic, message.value!);
            const event = stageEvent(stage, message.key?.toString() ?? '', value, {
              topic,
              partition,
              offset: message.offset,
              attempt: 1,
            });
            const { outOfOrder } = await runActions(stage, event, { db: arena.db, producer });
            if (outOfOrder) tracker.outOfOrder++;
            tracker.done(pos, sentAt);
          } catch {
            // No retries and no dead-letter topic: the event is gone, as in the system the seed describes.
            tracker.errors++;
            lost++;
            tracker.done(pos);
          }
        },
      };
    },
    async ({ arena }, check) => {
      const notes = lost ? [`${lost} event(s) dropped on an error (no retries, no dead letters)`] : [];
      if (!check) return { correct: null, notes };
      const tables = await checkTables(arena.db, ctx.set.truth);
      return { correct: tables.correct, notes: [...notes, ...tables.notes] };
    },
  );
}

/**
 * How fast the arena's input topics can merely be read (a consumer that decodes nothing and writes
 * nothing), in events/s: the yardstick the replay full pass is compared with.
 */
export async function rawReadRate(ctx: BenchContext, arena: Arena, expected: number): Promise<number> {
  const consumer = ctx.kafka.consumer({ groupId: `${arena.prefix}.raw-read`, maxWaitTimeInMs: 100 });
  // Timed from the group join (the first fetch follows it) to the last record: a join is not reading.
  let joinedAt = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => void (joinedAt = Date.now()));
  await consumer.connect();
  try {
    for (const topic of Object.values(arena.input)) await consumer.subscribe({ topic, fromBeginning: true });
    let seen = 0;
    let last = 0;
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachBatch: async ({ batch }) => {
          seen += batch.messages.length;
          last = Date.now();
          if (seen >= expected) resolve();
        },
      });
    });
    return Math.round((seen * 1000) / Math.max(1, last - joinedAt));
  } finally {
    await consumer.disconnect();
  }
}
