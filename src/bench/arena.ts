// What every contestant of a benchmark shares: the connections, and per measurement an arena — fresh
// topics under its own prefix with the scenario's partitions, a fresh database — removed afterwards.
// Also the tracker that counts terminal outcomes and latencies, and the publisher that offers the
// event set either all at once (a backlog to drain) or paced at a target rate (an open loop).
import { kafkajsClient } from '../kafka/kafkajs-client';
import { groupIdFor } from '../topology/names';
import { setTimeout as sleep } from 'node:timers/promises';
import { Partitioners, type Admin, type Consumer, type Kafka, type Producer } from 'kafkajs';
import type { Db, MongoClient } from 'mongodb';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { appointmentsFlow } from '../appointments';
import { conversionsFlow } from '../conversions';
import { groupByKey } from '../consumers/lanes';
import { KeyflowError } from '../errors';
import { headersToStrings } from '../producers/headers';
import { KeyedProducer } from '../producers/producer';
import type { WireRecord } from '../producers/types';
import type { Dataflow } from '../runtime/dataflow';
import { ENGINE_INDEXES } from '../runtime/engine-queries';
import type { RegistryCodec } from '../schemas/codec';
import { tenantSettingsTopic } from '../settings/tenant-settings';
import { ensureIndexes } from '../state/mongo';
import { ensureTopics } from '../kafka/kafkajs-topics';
import type { BatchStageSpec, Planned, TopicSpec } from '../topology/types';
import type { BenchEvent, EventSet, Flow } from './events';
import type { Progress } from '../cli/progress';
import type { ScenarioFile } from './scenario';
import { LatencyRecorder, rateTicks } from './stats';

/** The header carrying when the load generator sent (or was due to send) a record. */
export const SENT_AT = 'x-bench-sent-at';

export interface BenchContext {
  config: Config;
  kafka: Kafka;
  codec: RegistryCodec;
  mongo: MongoClient;
  log: Logger;
  runId: string;
  scenario: ScenarioFile;
  set: EventSet;
  progress: Progress;
  /** Epoch ms the scenario must be done by. */
  deadline: number;
  /** Set by Ctrl-C: measurements end early and clean up. */
  aborted: () => boolean;
}

export interface Arena {
  prefix: string;
  flows: Dataflow[];
  input: Record<Flow, string>;
  output: Record<Flow, string>;
  settingsTopic: string;
  topics: TopicSpec[];
  dbName: string;
  db: Db;
  /** The action stages of both flows, named for this arena. */
  stages: Record<Flow, BatchStageSpec>;
  /** Their consumer group ids under the configured application id (KEYFLOW_APPLICATION_ID). */
  groups: Record<Flow, string>;
}

let arenaCount = 0;

export function arenaNames(ctx: Pick<BenchContext, 'runId'> & { arenaRoot?: string }, label: string) {
  const n = ++arenaCount;
  const root = ctx.arenaRoot ?? 'bench';
  return {
    prefix: `${root}.${ctx.runId}.${n}.${label}`,
    dbName: `${root}_${ctx.runId}_${n}_${label}`.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 60),
  };
}

/**
 * The topics and stages of both flows under a prefix: what openArena creates, and what a processor in
 * another process (the fault suite's child) rebuilds from the prefix alone.
 */
export function arenaLayout(prefix: string, partitions: number) {
  const flows = [appointmentsFlow({ prefix }), conversionsFlow({ prefix })];
  const settingsTopic = `${prefix}.tenant-settings`;
  const topics = [
    tenantSettingsTopic(settingsTopic),
    ...flows.flatMap((f) => f.topics.map((t) => ({ ...t, partitions }))),
  ];
  const stageOf = (f: Dataflow) => f.stages[0] as BatchStageSpec;
  const [appointments, conversions] = flows as [Dataflow, Dataflow];
  return { flows, settingsTopic, topics, stageOf, appointments, conversions };
}

/** What opening an arena needs of a context: the benchmark's, or the fault suite's. */
export type ArenaContext = Pick<BenchContext, 'kafka' | 'codec' | 'mongo' | 'log' | 'runId'> & {
  /** The processors' application id, which prefixes the arena's group ids. */
  config: Pick<Config, 'applicationId'>;
  scenario: Pick<ScenarioFile, 'partitions'>;
  /** First part of topic, group and database names (default `bench`): whose arena it is. */
  arenaRoot?: string;
};

/** Creates the arena's topics (inputs, outputs, settings) and its database with every index. */
export async function openArena(ctx: ArenaContext, label: string): Promise<Arena> {
  const { prefix, dbName } = arenaNames(ctx, label);
  const { flows, settingsTopic, topics, stageOf, appointments, conversions } = arenaLayout(
    prefix,
    ctx.scenario.partitions,
  );
  const db = ctx.mongo.db(dbName);
  try {
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      // A broker that has just started can refuse a creation for a moment while it registers itself.
      for (let attempt = 1; ; attempt++) {
        try {
          await ensureTopics(admin, topics, ctx.log);
          break;
        } catch (err) {
          if (attempt >= 10) throw err;
          await sleep(1000);
        }
      }
    } finally {
      await admin.disconnect();
    }
    await ctx.codec.registerAll(topics);
    await ensureIndexes(db, [...ENGINE_INDEXES, ...flows.flatMap((f) => f.indexes)]);
  } catch (err) {
    // Half an arena (some topics made, say) is removed too: a failed start leaves nothing behind.
    await removeArena(ctx, prefix, db).catch((cleanupErr: unknown) =>
      ctx.log.error({ err: cleanupErr, prefix }, 'could not remove a half-made arena'),
    );
    throw err;
  }
  return {
    prefix,
    flows,
    input: { appointments: stageOf(appointments).inputs[0]!, conversions: stageOf(conversions).inputs[0]! },
    output: {
      appointments: stageOf(appointments).outputs[0]!,
      conversions: stageOf(conversions).outputs[0]!,
    },
    settingsTopic,
    topics,
    dbName,
    db,
    stages: { appointments: stageOf(appointments), conversions: stageOf(conversions) },
    groups: {
      appointments: groupIdFor(ctx.config.applicationId, stageOf(appointments).name),
      conversions: groupIdFor(ctx.config.applicationId, stageOf(conversions).name),
    },
  };
}

/** Deletes every topic and consumer group under the prefix (dead-letter topics included) and drops the database. */
async function removeArena(ctx: ArenaContext, prefix: string, db: Db): Promise<void> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    if (mine.length) await admin.deleteTopics({ topics: mine, timeout: 30_000 });
    const groups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => g.startsWith(groupIdFor(ctx.config.applicationId, `${prefix}.`)));
    if (groups.length) await deleteGroupsOnceEmpty(admin, groups);
  } finally {
    await admin.disconnect();
  }
  await db.dropDatabase();
}

/**
 * Deletes consumer groups, waiting for members that died without leaving (SIGKILL) to time out: the
 * broker refuses to delete a group that still has members (NON_EMPTY_GROUP). Gives up after `withinMs`.
 */
export async function deleteGroupsOnceEmpty(
  admin: Pick<Admin, 'deleteGroups' | 'listGroups'>,
  groups: string[],
  withinMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + withinMs;
  let left = groups;
  while (left.length > 0) {
    try {
      await admin.deleteGroups(left);
      return;
    } catch {
      if (Date.now() > deadline) return;
      await new Promise((r) => setTimeout(r, 500));
      const exist = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
      left = left.filter((g) => exist.has(g));
    }
  }
}

export function closeArena(ctx: ArenaContext, arena: Arena): Promise<void> {
  return removeArena(ctx, arena.prefix, arena.db);
}

/** Counts each offered unit's terminal outcome once, with its latency when its sent time is known. */
export class Tracker {
  readonly latency = new LatencyRecorder();
  private readonly seen = new Set<string>();
  completed = 0;
  retries = 0;
  errors = 0;
  deadLetters = 0;
  outOfOrder = 0;
  firstAt: number | undefined;
  lastAt: number | undefined;

  constructor(readonly expected: number) {}

  /** Returns false when the unit had already completed (a redelivery). */
  done(id: string, sentAt?: number, at = Date.now()): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    this.completed++;
    this.firstAt ??= at;
    this.lastAt = at;
    if (sentAt !== undefined && Number.isFinite(sentAt)) this.latency.add(Math.max(0, at - sentAt));
    return true;
  }

  get finished(): boolean {
    return this.completed >= this.expected;
  }

  /** Resolves when every unit completed, or at the deadline (false). Ticks the progress bar meanwhile. */
  async wait(ctx: BenchContext, until: number): Promise<boolean> {
    for (;;) {
      ctx.progress.tick(this.completed);
      if (this.finished) return true;
      if (Date.now() > until || ctx.aborted()) return false;
      await sleep(100);
    }
  }

  /** Throughput over the window from the first completion to the last: join and warm-up excluded. */
  throughput(): number {
    if (this.firstAt === undefined || this.lastAt === undefined || this.completed < 2) return 0;
    const seconds = Math.max(1, this.lastAt - this.firstAt) / 1000;
    return Math.round((this.completed - 1) / seconds);
  }
}

/**
 * Resolves once `ready()` holds (or after 30 s). An open loop starts only when the contestant is in
 * its group: otherwise the join's pause lands in the first events' latency and inflates the tail.
 */
export async function untilReady(ready: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!ready() && Date.now() < deadline) await sleep(20);
}

/** A readiness flag for a kafkajs consumer: true from its first group join on. */
export function joinedFlag(consumer: Consumer): () => boolean {
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true;
  });
  return () => joined;
}

export function sentAtOf(headers: Parameters<typeof headersToStrings>[0]): number | undefined {
  const v = headersToStrings(headers)[SENT_AT];
  const n = v === undefined ? NaN : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** The event set as wire records for the arena's input topics: encoded once, before any timing. */
export async function wireRecords(
  ctx: Pick<BenchContext, 'kafka' | 'codec'>,
  arena: Arena,
  events: readonly BenchEvent[],
): Promise<WireRecord[]> {
  const prep = new KeyedProducer(kafkajsClient(ctx.kafka), ctx.codec);
  return Promise.all(
    events.map(async (e) => {
      const topic = arena.input[e.flow];
      if (e.value === null) return { topic, key: e.key, value: e.poison, headers: {}, eventId: e.key };
      return prep.prepare({
        topic,
        key: e.key,
        value: e.value,
        eventId: e.value.eventId,
        occurredAt: e.value.occurredAt,
      });
    }),
  );
}

/** The load generator's producer: murmur2 like the app's, so a key lands on the same partition. */
export async function loadProducer(kafka: Kafka): Promise<Producer> {
  const p = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await p.connect();
  return p;
}

function send(p: Producer, records: WireRecord[], sentAt: number): Promise<unknown> {
  return p.sendBatch({
    acks: -1,
    topicMessages: groupByKey(records, (r) => r.topic).map((list) => ({
      topic: list[0]!.topic,
      messages: list.map((r) => ({
        key: r.key,
        value: r.value,
        headers: { ...r.headers, [SENT_AT]: String(sentAt) },
      })),
    })),
  });
}

/** Publishes everything as fast as the broker takes it: the backlog a max-throughput run drains. */
export async function publishAll(kafka: Kafka, records: WireRecord[]): Promise<void> {
  const p = await loadProducer(kafka);
  try {
    for (let i = 0; i < records.length; i += 1000) await send(p, records.slice(i, i + 1000), Date.now());
  } finally {
    await p.disconnect();
  }
}

/**
 * Offers `units` at `rate` per second in ticks of 20 ms. Each unit is stamped with the time it was DUE,
 * not the time it went out, so a stalled sender shows up as latency instead of hiding it.
 */
export async function paced<T>(
  units: readonly T[],
  rate: number,
  send: (batch: T[], dueAt: number) => Promise<unknown>,
  stop: () => boolean,
): Promise<number> {
  const tickMs = 20;
  const ticks = rateTicks(rate, (units.length / rate) * 1000, tickMs);
  const start = Date.now();
  const inFlight: Promise<unknown>[] = [];
  let sent = 0;
  for (let i = 0; i < ticks.length && sent < units.length && !stop(); i++) {
    const due = start + i * tickMs;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    const n = Math.min(ticks[i]!, units.length - sent);
    if (n > 0) inFlight.push(send(units.slice(sent, sent + n) as T[], due));
    sent += n;
  }
  await Promise.all(inFlight);
  return sent;
}

/** Sends records at `rate` through a load producer; returns how many went out. */
export async function publishPaced(
  kafka: Kafka,
  records: WireRecord[],
  rate: number,
  stop: () => boolean,
): Promise<number> {
  const p = await loadProducer(kafka);
  try {
    return await paced(records, rate, (batch, due) => send(p, batch, due), stop);
  } finally {
    await p.disconnect();
  }
}

/**
 * Offers the records to a contestant that is already consuming: none more in max mode (the backlog
 * is published), paced in an open loop once it is `ready`. Resolves with whether every unit completed
 * before `until`, once the publisher is done too.
 */
export async function offer(
  ctx: BenchContext,
  spec: { mode: 'max' | 'open'; rate?: number; until: number },
  records: WireRecord[],
  tracker: Tracker,
  ready: () => boolean,
): Promise<boolean> {
  if (spec.mode === 'open') await untilReady(ready);
  const publishing =
    spec.mode === 'open'
      ? publishPaced(ctx.kafka, records, spec.rate!, () => ctx.aborted())
      : Promise.resolve(0);
  const finished = await tracker.wait(ctx, spec.until);
  await publishing;
  return finished;
}

/**
 * Fails an event's first attempts when the scenario says so: the same events in every contestant.
 * As a real write failure would, it stops the key there: its later plans are not written this round.
 */
export function withInjectedFailures(spec: BatchStageSpec, set: EventSet): BatchStageSpec {
  if (set.failing.size === 0) return spec;
  const inner = spec.handler;
  return {
    ...spec,
    handler: {
      read: (events, c) => inner.read(events, c),
      decide: (e, s) => inner.decide(e, s),
      async write(plans: readonly Planned<unknown, unknown>[], c) {
        const stopped = new Set<string>();
        const failed: { index: number; error: unknown }[] = [];
        const rest = plans.filter((p) => {
          if (stopped.has(p.event.key)) return false;
          if (set.failing.has(p.event.eventId) && p.event.attempt <= set.transientAttempts) {
            stopped.add(p.event.key);
            failed.push({
              index: p.index,
              error: new KeyflowError('HANDLER_TRANSIENT', `injected failure (attempt ${p.event.attempt})`, {
                retriable: true,
              }),
            });
            return false;
          }
          return true;
        });
        const report = await inner.write(rest, c);
        return { failed: [...failed, ...report.failed] };
      },
    },
  };
}
