// The stage runner: one consumer group per stage. For each delivery (one fetched batch of one
// partition) it opens the envelopes, holds back parked keys, runs the events through the stage's
// executor in rounds (a round's failures retry in the next round, or are dead-lettered), and settles
// every event into the commit window, which commits only the completed prefix.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from 'mongodb';
import { classify, KeyflowError } from '../errors';
import { EVENTS, type HandledEvent, type Instrumentation } from '../instrumentation';
import type { Logger } from '../logger';
import type { KeyedProducer } from '../producers/producer';
import { HEADERS } from '../producers/headers';
import type { WireRecord } from '../producers/types';
import * as letters from '../state/dead-letters';
import { recordSkippedRange } from '../state/skipped-ranges';
import { groupIdFor } from '../topology/names';
import type { ActionContext, StageEvent, StageSpec } from '../topology/types';
import { runBatch } from './batch';
import { deliveryBytes, type ByteBudget } from './byte-budget';
import { CommitWindow } from './commit-window';
import { openEnvelope, type Envelope } from './envelope';
import { strategyFor, withInfraRetry, type FailureStrategy } from './failure';
import type { Delivery, GroupEvents, GroupOptions, RawMessage } from './group';
import type { RunnerOptions } from './options';
import { failed, type EventOutcome, type StepTimings } from './outcome';
import { ParkedKeys, type LetterStore } from './parked-keys';
import { runEachEvent } from './per-event';
import { RetentionWatch, type OffsetsPort, type SkippedRange } from './retention';
import type { EntityLeases, RuntimeSwitches, ValueDecoder } from './types';

/** What the runner needs of a consumer group membership (group.ts's GroupMember). */
export interface GroupPort {
  start(onDelivery: (d: Delivery) => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export interface RunnerDeps {
  /** Joins the stage's group; the processor passes GroupMember over its Kafka client. */
  group: (opts: GroupOptions, events: GroupEvents) => GroupPort;
  decoder: ValueDecoder;
  producer: Pick<KeyedProducer, 'prepare' | 'sendNow'>;
  /** Default: the MongoDB-backed store in `db`. */
  letters?: LetterStore;
  /** Its indexes (dead letters among them) are created by the Processor before any runner starts. */
  db: Db;
  log: Logger;
  instrumentation: Instrumentation;
  leases?: EntityLeases;
  runtime?: () => RuntimeSwitches;
  /** Shared by every stage of the process: the fetched bytes held at once (default: no bound). */
  ingest?: ByteBudget;
  /** Inputs whose tombstones are deletes to pass; on any other input a null value is dead-lettered. */
  compacted?: (topic: string) => boolean;
  /** Committed offsets and log starts, to report offsets that fell out of retention (default: no check). */
  offsets?: OffsetsPort;
  /** Keeps a skipped range durably; default: the keyflow_skipped_ranges collection in `db`. */
  recordSkipped?: (range: SkippedRange) => Promise<void>;
}

/** An event on its way through a delivery's rounds. */
interface Pending {
  raw: RawMessage;
  event: StageEvent;
  redriveLetter: string | undefined;
}

/** One delivery being worked on: where it came from, its commit window, and whether to go on. */
interface Run {
  topic: string;
  partition: number;
  window: CommitWindow;
  keepGoing: () => boolean;
}

/** Why an event is dead-lettered, with what the letter needs. */
interface Dying {
  raw: RawMessage;
  key: string | null;
  eventId: string;
  error: KeyflowError;
  attempts: number;
  redriveLetter: string | undefined;
  event?: StageEvent;
  t?: StepTimings;
}

export class StageRunner {
  private member: GroupPort | undefined;
  private readonly letters: LetterStore;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly parked: ParkedKeys;
  private readonly strategy: FailureStrategy;
  private readonly retention: RetentionWatch | undefined;
  private assigned = 0;
  private joined = false;

  constructor(
    readonly spec: StageSpec,
    private readonly deps: RunnerDeps,
    private readonly opts: RunnerOptions,
  ) {
    this.log = deps.log.child({ stage: spec.name });
    this.strategy = strategyFor(spec, opts.retry);
    this.retention = deps.offsets ? new RetentionWatch(spec.name, deps.offsets) : undefined;
    this.letters = deps.letters ?? letters.mongoLetterStore(deps.db, opts.deadLetterRetentionMs);
    const keepGoing = () => !this.stopping;
    this.parked = new ParkedKeys(
      spec.name,
      this.letters,
      (fn) => this.infra(fn, keepGoing),
      this.log,
      keepGoing,
      sleep,
    );
  }

  get name(): string {
    return this.spec.name;
  }

  /** True once the consumer has joined its group (readiness). */
  get ready(): boolean {
    return this.joined && !this.stopping;
  }

  get parkedKeys(): ReadonlySet<string> {
    return this.parked.current;
  }

  async start(): Promise<void> {
    const { instrumentation } = this.deps;
    this.member = this.deps.group(
      {
        groupId: groupIdFor(this.opts.applicationId, this.spec.name),
        topics: this.spec.inputs,
        fromBeginning: this.opts.fromBeginning,
        sessionTimeoutMs: this.opts.sessionTimeoutMs,
        rebalanceTimeoutMs: this.opts.rebalanceTimeoutMs,
        maxBytes: this.opts.fetchMaxBytes,
        maxBytesPerPartition: this.opts.fetchMaxBytesPerPartition,
        heartbeatIntervalMs: this.opts.heartbeatIntervalMs,
        maxWaitTimeInMs: this.opts.maxWaitTimeInMs,
        partitionsConsumedConcurrently: this.opts.partitionsConsumedConcurrently,
      },
      {
        onJoin: (assigned) => {
          this.assigned = assigned.reduce((n, a) => n + a.partitions.length, 0);
          this.joined = true;
          this.retention?.reset();
          void this.scanRetention(assigned);
          // Another instance may have parked keys of the partitions we now own: reload before processing.
          if ((this.spec.onDeadLetter ?? 'park-key') === 'park-key') this.parked.reload();
          instrumentation.emit(EVENTS.STAGE_REBALANCE, { stage: this.spec.name, assigned });
        },
        onCrash: (err, restart) => {
          this.joined = false;
          this.log.error({ err, restart }, 'consumer crashed');
        },
      },
    );
    await this.scanRetention(this.spec.inputs.map((topic) => ({ topic })));
    await this.member.start((d) => this.onDelivery(d));
    instrumentation.emit(EVENTS.STAGE_START, { stage: this.spec.name });
    this.log.info({ inputs: this.spec.inputs, kind: this.spec.kind }, 'stage started');
  }

  /**
   * Graceful stop: no new round starts, the round in flight finishes, completed work is flushed and
   * committed, then the consumer leaves its group. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      await this.member?.stop();
      this.joined = false;
      this.deps.instrumentation.emit(EVENTS.STAGE_STOP, { stage: this.spec.name });
      this.log.info({ assigned: this.assigned }, 'stage stopped');
    })();
    return this.stopped;
  }

  /** An infrastructure call, retried while `keepGoing` holds, for at most the in-batch retry budget. */
  private infra<T>(fn: () => Promise<T>, keepGoing: () => boolean): Promise<T> {
    return withInfraRetry(
      fn,
      keepGoing,
      { ...this.opts.retry, budgetMs: this.opts.infraRetryBudgetMs },
      (err, attempt, delay) => this.log.warn({ err, attempt, delay }, 'infrastructure call failed; retrying'),
      sleep,
    );
  }

  /** Heartbeats the delivery's member every heartbeat interval until the returned stop is called. */
  private heartbeats(d: Delivery): () => void {
    const beat = setInterval(() => {
      d.heartbeat().catch((err) => this.log.debug({ err }, 'heartbeat failed'));
    }, this.opts.heartbeatIntervalMs);
    return () => clearInterval(beat);
  }

  private async beating<T>(d: Delivery, fn: () => Promise<T>): Promise<T> {
    const stop = this.heartbeats(d);
    try {
      return await fn();
    } finally {
      stop();
    }
  }

  private async onDelivery(d: Delivery): Promise<void> {
    const budget = this.deps.ingest;
    if (!budget) return this.work(d);
    // Waiting for room keeps the membership alive: heartbeats go on meanwhile.
    const release = await this.beating(d, () => budget.take(deliveryBytes(d.messages)));
    try {
      await this.work(d);
    } finally {
      release();
    }
  }

  private async work(d: Delivery): Promise<void> {
    const { instrumentation } = this.deps;
    const where = { stage: this.spec.name, topic: d.topic, partition: d.partition };
    const started = Date.now();
    const window = new CommitWindow(
      d.messages.map((m) => m.offset),
      {
        send: (records) =>
          this.infra(
            () => this.deps.producer.sendNow(records),
            () => !this.stopping,
          ),
        commit: (next) => d.commit(next),
        committed: (last, offsets) =>
          instrumentation.emit(EVENTS.BATCH_COMMITTED, {
            ...where,
            offset: last,
            committedAt: Date.now(),
            positions: offsets.map((o) => `${d.topic}:${d.partition}:${o}`),
          }),
        lost: (err) =>
          this.log.warn({ err, partition: d.partition }, 'commit refused; partition likely reassigned'),
      },
      { maxRecords: this.opts.flushMaxRecords, intervalMs: this.opts.flushIntervalMs },
    );
    instrumentation.emit(EVENTS.BATCH_START, { ...where, size: d.messages.length, lag: d.lag });
    const keepGoing = () => !this.stopping && d.active() && !window.lost;
    // Heartbeats go on while the rounds work, so a long batch never costs the partition.
    // A heartbeat answered with a rebalance (or a lost generation) makes d.active() false: the rounds
    // take no new event, and the delivery ends as soon as the round in flight has settled.
    let failure: unknown;
    const beat = this.heartbeats(d);
    try {
      await this.watchRetention(d);
      await this.parked.ready();
      const consumedAt = Date.now();
      const compacted = this.deps.compacted;
      const envelopes = await Promise.all(
        d.messages.map((m) =>
          this.infra(
            () => openEnvelope(m, d, this.spec, this.deps.decoder, consumedAt, compacted),
            keepGoing,
          ),
        ),
      );
      const run: Run = { topic: d.topic, partition: d.partition, window, keepGoing };
      await this.rounds(await this.admit(envelopes, run), run);
    } catch (err) {
      // Our infrastructure stayed down until the stage stopped: what is unsettled is redelivered.
      if (keepGoing()) failure = err;
    } finally {
      beat();
    }
    // Whatever finished is flushed and committed even when a round failed; the rest is redelivered.
    await window.flush();
    instrumentation.emit(EVENTS.BATCH_END, {
      ...where,
      size: d.messages.length,
      durationMs: Date.now() - started,
    });
    if (failure) throw failure;
    const moved = d.moved();
    if (moved !== undefined && !window.allDone) {
      // Rethrown so the client rejoins now instead of fetching again: the group is waiting for us.
      this.log.info(
        { partition: d.partition, err: moved },
        'group is rebalancing: batch stopped early, its uncommitted rest goes to the next owner',
      );
      throw moved;
    }
  }

  /**
   * Reports records of the partition that fell out of retention before this stage read them: the
   * client has already applied its reset policy, so the range is gone; it must not go unnoticed. A
   * check that cannot reach the broker is logged and the delivery goes on (it loses nothing by that).
   */
  private async watchRetention(d: Delivery): Promise<void> {
    if (!this.retention) return;
    const first = d.messages[0]!.offset;
    const last = d.messages[d.messages.length - 1]!.offset;
    let range: SkippedRange | undefined;
    try {
      range = await this.retention.check(d.topic, d.partition, first, last);
    } catch (err) {
      this.log.warn({ err, topic: d.topic, partition: d.partition }, 'could not check for skipped offsets');
      return;
    }
    if (range) await this.reportSkipped(range);
  }

  /**
   * Compares committed offsets with log starts before the client fetches (at start, for every input
   * partition; on a join, for the assigned ones): the client resets an offset out of range and commits
   * over it, so afterwards nothing would show what was skipped. A scan that fails is logged.
   */
  private async scanRetention(assigned: { topic: string; partitions?: number[] }[]): Promise<void> {
    const watch = this.retention;
    if (!watch) return;
    for (const a of assigned) {
      try {
        for (const range of await watch.scan(a.topic, a.partitions)) await this.reportSkipped(range);
      } catch (err) {
        this.log.warn({ err, topic: a.topic }, 'could not check for skipped offsets');
      }
    }
  }

  private async reportSkipped(range: SkippedRange): Promise<void> {
    this.log.error(
      { topic: range.topic, partition: range.partition, from: range.from, to: range.to, count: range.count },
      `offsets ${range.from}-${BigInt(range.to) - 1n} of ${range.topic}/${range.partition} fell out of retention before this stage read them; the reset policy (${this.opts.fromBeginning ? 'earliest' : 'latest'}) goes on from ${range.to}`,
    );
    this.deps.instrumentation.emit(EVENTS.OFFSETS_SKIPPED, {
      stage: range.stage,
      topic: range.topic,
      partition: range.partition,
      from: range.from,
      to: range.to,
      count: range.count,
    });
    const record = this.deps.recordSkipped ?? ((r: SkippedRange) => recordSkippedRange(this.deps.db, r));
    await this.infra(
      () => record(range),
      () => !this.stopping,
    );
  }

  /**
   * Settles what needs no handler (tombstones, re-drives for other stages), dead-letters what cannot be
   * an event, and holds back events of parked keys. Returns the events for the handler, in offset order.
   */
  private async admit(envelopes: Envelope[], run: Run): Promise<Pending[]> {
    const work: Pending[] = [];
    const dying: Dying[] = [];
    const passed: Envelope[] = [];
    const parking = this.strategy.name === 'park-key';
    /** Per key, the letters re-driven earlier in this batch and admitted: later ones may follow them. */
    const ahead = new Map<string, Set<string>>();
    // The store's word on the batch's parked (or not yet seen) keys: a previous owner's letter, a discard.
    if (parking) {
      await this.parked.refresh(
        envelopes.flatMap((e) => (e.kind === 'event' && e.redriveLetter === undefined ? [e.event.key] : [])),
      );
    }
    for (const env of envelopes) {
      if (env.kind === 'pass') {
        passed.push(env);
      } else if (env.kind === 'dead') {
        dying.push({ ...env, attempts: 1 });
        if (env.key !== null && parking) this.parked.park(env.key);
      } else {
        const { key } = env.event;
        const turn = await this.parked.turn(key, env.redriveLetter, ahead.get(key));
        if (turn === 'go' && env.redriveLetter !== undefined) {
          ahead.set(key, new Set(ahead.get(key)).add(env.redriveLetter));
        }
        if (turn === 'wait') {
          if (parking) this.parked.park(key);
          dying.push(this.parkedLetter(env));
        } else if (turn === 'done') {
          // A second copy of a re-drive that already applied: nothing left to do.
          passed.push({
            kind: 'pass',
            raw: env.raw,
            key: env.event.key,
            eventId: env.event.eventId,
            report: true,
          });
        } else {
          work.push(env);
        }
      }
    }
    for (const env of passed) {
      if (env.kind === 'pass' && env.report) {
        this.report(run, env.raw, { key: env.key, eventId: env.eventId }, 'skipped', {}, 1);
      }
      await run.window.settle(env.raw.offset, []);
    }
    await this.deadLetter(dying, run);
    return work;
  }

  private parkedLetter(p: Pending | (Envelope & { kind: 'event' })): Dying {
    const { key } = p.event;
    const error = new KeyflowError('KEY_PARKED', `key ${key} has an earlier event in ${this.spec.name}.dlq`);
    return {
      raw: p.raw,
      key,
      eventId: p.event.eventId,
      error,
      attempts: 0,
      redriveLetter: p.redriveLetter,
      event: p.event,
    };
  }

  /** Runs rounds until every event is settled, or the delivery must stop (its rest is redelivered). */
  private async rounds(work: Pending[], run: Run): Promise<void> {
    let round = work;
    while (round.length > 0 && run.keepGoing()) {
      const outcomes = await this.execute(
        round.map((p) => p.event),
        run.keepGoing,
      );
      const next: Pending[] = [];
      const dying: Dying[] = [];
      const fate = new Map<string, 'wait' | 'park'>();
      let delayMs = Infinity;
      const done: { p: Pending; o: EventOutcome & { kind: 'done' } }[] = [];
      round.forEach((p, i) => {
        const o = outcomes[i]!;
        const key = p.event.key;
        const f = fate.get(key);
        if (f === 'park') return void dying.push(this.parkedLetter(p));
        if (f === 'wait' || o.kind === 'held') return void next.push(p);
        if (o.kind === 'done') return void done.push({ p, o });
        const action = this.strategy.onFailure(o.error, p.event.attempt);
        if (action.action === 'retry') {
          fate.set(key, 'wait');
          delayMs = Math.min(delayMs, action.delayMs);
          next.push({ ...p, event: { ...p.event, attempt: p.event.attempt + 1 } });
          this.onRetry(p.event, o.error, action.delayMs);
          return;
        }
        fate.set(key, action.park ? 'park' : 'wait');
        if (action.park) this.parked.park(key);
        dying.push({
          ...p,
          key,
          eventId: p.event.eventId,
          error: o.error,
          attempts: p.event.attempt,
          t: o.t,
        });
      });
      await this.settleDone(done, run);
      await this.deadLetter(dying, run);
      round = next;
      if (round.length > 0 && delayMs !== Infinity) await this.pause(delayMs, run.keepGoing);
    }
  }

  /** The stage's executor over one round, under entity leases when locking is switched on. */
  private async execute(events: StageEvent[], keepGoing: () => boolean): Promise<EventOutcome[]> {
    const leases = this.deps.runtime?.().entityLocking === 'lease' ? this.deps.leases : undefined;
    const tokens = new Map<string, number>();
    const ctx: ActionContext = {
      stage: this.spec.name,
      db: this.deps.db,
      now: () => Date.now(),
      ...(leases ? { fence: (key: string) => tokens.get(key) } : {}),
    };
    const lanes = (list: StageEvent[], busy: number) =>
      this.deps.instrumentation.emit(EVENTS.LANES_BUSY, {
        stage: this.spec.name,
        partition: list[0]!.partition,
        busy,
      });
    // A batch stage folds its keys into one unit of work: one lane busy while it runs, none after,
    // so keyflow_lanes_busy (and its dashboard panel) covers batch stages too.
    const busyWhile = async (list: StageEvent[], fold: () => Promise<EventOutcome[]>) => {
      if (list.length === 0) return fold();
      lanes(list, 1);
      try {
        return await fold();
      } finally {
        lanes(list, 0);
      }
    };
    const spec = this.spec;
    const run = (list: StageEvent[]) =>
      spec.kind === 'batch'
        ? busyWhile(list, () => runBatch(spec.handler, list, ctx, keepGoing))
        : runEachEvent(spec, list, ctx, this.opts.keyLanes, keepGoing, (busy) => lanes(list, busy));
    if (!leases || events.length === 0) return run(events);

    // The owner names the lane: this instance, this stage, this partition. Two stages of one process,
    // or two partitions of one stage, hold an entity's lease in turn, never both at once.
    const { topic, partition } = events[0]!;
    const owner = `${this.opts.instanceId}:${this.spec.name}:${topic}:${partition}`;
    const ttl = this.opts.leaseTtlMs;
    const keys = [...new Set(events.map((e) => e.key))];
    const refused = new Map<string, unknown>();
    await Promise.all(
      keys.map((k) =>
        leases.acquire(k, owner, ttl).then(
          (token) => void tokens.set(k, token),
          (err: unknown) => void refused.set(k, err),
        ),
      ),
    );
    // Renewed while the handler runs, so a slow round keeps its leases; a renewal that fails leaves the
    // lease to expire, and the fence then refuses this holder's late writes.
    const renew = setInterval(
      () => {
        for (const k of tokens.keys()) {
          leases
            .acquire(k, owner, ttl)
            .catch((err) => this.log.warn({ err, key: k }, 'lease renewal failed'));
        }
      },
      Math.max(1, Math.floor(ttl / 3)),
    );
    try {
      const held = events.filter((e) => !refused.has(e.key));
      const outcomes = await run(held);
      const byEvent = new Map(held.map((e, i) => [e, outcomes[i]!]));
      return events.map((e) => byEvent.get(e) ?? failed(refused.get(e.key)));
    } finally {
      clearInterval(renew);
      await Promise.all(
        [...tokens.keys()].map((k) =>
          leases
            .release(k, owner)
            .catch((err) => this.log.warn({ err, key: k }, 'lease release failed; it expires by itself')),
        ),
      );
    }
  }

  private async settleDone(
    done: { p: Pending; o: EventOutcome & { kind: 'done' } }[],
    run: Run,
  ): Promise<void> {
    const dying: Dying[] = [];
    const prepared = await Promise.all(
      done.map(async ({ p, o }) => {
        const emitStartedAt = Date.now();
        const { eventId, traceId, attempt, tenantId, occurredAt } = p.event;
        const cause = { eventId, stage: this.spec.name, traceId, attempt, tenantId };
        try {
          const records = await this.infra(
            () =>
              Promise.all(
                o.emit.map((r, i) =>
                  this.deps.producer.prepare(
                    { topic: r.topic, key: r.key, value: r.value, occurredAt: r.occurredAt ?? occurredAt },
                    cause,
                    i,
                  ),
                ),
              ),
            run.keepGoing,
          );
          return { p, o, records, emitStartedAt };
        } catch (err) {
          const error = classify(err);
          if (error.retriable) throw err;
          // A record the stage emits cannot be built (no key, fails its topic's schema, too large):
          // the event's state is written, its emission goes to the dead-letter topic with the reason.
          dying.push({ ...p, key: p.event.key, eventId, error, attempts: attempt, t: o.t });
          return undefined;
        }
      }),
    );
    for (const item of prepared) {
      if (!item) continue;
      const { p, o, records, emitStartedAt } = item;
      if (p.redriveLetter !== undefined) await this.parked.resolved(p.redriveLetter, p.event.key);
      this.report(run, p.raw, p.event, o.outcome, { ...o.t, emitStartedAt }, p.event.attempt, {
        outOfOrder: o.outOfOrder,
        emitted: records.map((r) => r.eventId),
      });
      await run.window.settle(p.raw.offset, records, (error) => this.refused(p, error, run));
    }
    await this.deadLetter(dying, run);
  }

  /** The broker refused an event's records outright: the event is dead-lettered in their place. */
  private async refused(p: Pending, error: KeyflowError, run: Run): Promise<WireRecord[]> {
    if (this.strategy.name === 'park-key') this.parked.park(p.event.key);
    const instead: WireRecord[] = [];
    const dying: Dying = {
      ...p,
      key: p.event.key,
      eventId: p.event.eventId,
      error,
      attempts: p.event.attempt,
    };
    await this.deadLetter([dying], run, async (_offset, records) => void instead.push(...records));
    return instead;
  }

  /** Records the letters, reports them, and settles each event with its dead-letter record. */
  private async deadLetter(
    dying: Dying[],
    run: Run,
    settle: (offset: string, records: WireRecord[]) => Promise<void> = (o, r) => run.window.settle(o, r),
  ): Promise<void> {
    if (dying.length === 0) return;
    const { topic, partition } = run;
    const inputs = dying.map((x): letters.LetterInput => {
      const park = this.strategy.name === 'park-key' && x.key !== null;
      return {
        id: x.redriveLetter ?? letters.letterId(this.spec.name, topic, partition, x.raw.offset),
        stage: this.spec.name,
        key: x.key,
        eventId: x.eventId,
        topic,
        partition,
        offset: x.raw.offset,
        value: x.raw.value,
        headers: stripDlqHeaders(x.raw.headers),
        code: x.error.code,
        message: x.error.message,
        attempts: x.attempts,
        firstFailedAt: x.event?.consumedAt ?? Date.now(),
        status: park ? 'parked' : 'dead',
        // A re-driven letter that only waits again keeps the reason it first failed for.
        keepReason: x.redriveLetter !== undefined && x.error.code === 'KEY_PARKED',
      };
    });
    await this.infra(
      () => this.letters.record(inputs),
      () => !this.stopping,
    );
    for (const [i, x] of dying.entries()) {
      const input = inputs[i]!;
      this.deps.instrumentation.emit(EVENTS.EVENT_DEAD_LETTERED, {
        stage: this.spec.name,
        key: x.key ?? '',
        eventId: x.eventId,
        code: x.error.code,
        attempts: x.attempts,
      });
      if (x.error.code !== 'KEY_PARKED') {
        this.log.warn(
          { key: x.key, eventId: x.eventId, code: x.error.code, attempts: x.attempts, err: x.error.message },
          'event dead-lettered',
        );
      }
      this.report(
        run,
        x.raw,
        { key: x.key ?? '', eventId: x.eventId, ...x.event },
        x.error.code === 'KEY_PARKED' ? 'parked' : 'dead-lettered',
        x.t ?? {},
        x.attempts,
        { error: x.error },
      );
      await settle(x.raw.offset, [
        letters.dlqRecord(input, this.opts.dlqMaxMessageBytes),
        ...(await this.closeOut(x)),
      ]);
    }
  }

  /** The stage's own records for a dead-lettered event, derived under `<stage>.dlq` so they never collide. */
  private async closeOut(x: Dying): Promise<WireRecord[]> {
    if (!this.spec.onDeadLettered || !x.event || x.error.code === 'KEY_PARKED') return [];
    const { eventId, traceId, attempt, tenantId, occurredAt } = x.event;
    const cause = { eventId, stage: `${this.spec.name}.dlq`, traceId, attempt, tenantId };
    const out = this.spec.onDeadLettered(x.event, { code: x.error.code, message: x.error.message });
    return Promise.all(
      out.map((r, i) =>
        this.deps.producer.prepare(
          { topic: r.topic, key: r.key, value: r.value, occurredAt: r.occurredAt ?? occurredAt },
          cause,
          i,
        ),
      ),
    );
  }

  private onRetry(e: StageEvent, err: KeyflowError, delayMs: number): void {
    const { key, eventId, attempt } = e;
    this.deps.instrumentation.emit(EVENTS.EVENT_RETRY, {
      stage: this.spec.name,
      key,
      eventId,
      attempt,
      code: err.code,
      delayMs,
    });
    this.log.warn({ key, eventId, attempt, code: err.code, delayMs, err: err.message }, 'retrying event');
  }

  /** Waits out a retry delay, giving up early (the events stay uncommitted) when the stage stops. */
  private async pause(ms: number, keepGoing: () => boolean): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until && keepGoing()) await sleep(Math.min(100, until - Date.now()));
  }

  private report(
    run: Run,
    raw: RawMessage,
    ids: Partial<StageEvent> & { key: string; eventId: string },
    outcome: HandledEvent['outcome'],
    t: StepTimings & { emitStartedAt?: number },
    attempt: number,
    extra: { outOfOrder?: boolean; error?: KeyflowError; emitted?: string[] } = {},
  ): void {
    this.deps.instrumentation.emit(EVENTS.EVENT_HANDLED, {
      stage: this.spec.name,
      topic: run.topic,
      partition: run.partition,
      offset: raw.offset,
      key: ids.key,
      eventId: ids.eventId,
      traceId: ids.traceId,
      tenantId: ids.tenantId,
      occurredAt: ids.occurredAt,
      consumedAt: ids.consumedAt ?? Date.now(),
      readStartedAt: t.readStartedAt,
      decideStartedAt: t.decideStartedAt,
      writeStartedAt: t.writeStartedAt,
      emitStartedAt: t.emitStartedAt,
      finishedAt: Date.now(),
      attempt,
      outcome,
      outOfOrder: extra.outOfOrder === true,
      errorCode: extra.error?.code,
      errorMessage: extra.error?.message,
      emitted: extra.emitted ?? [],
    });
  }
}

/** A re-driven letter that dies again is recorded afresh; its old dead-letter headers are dropped. */
function stripDlqHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (!k.startsWith('keyflow-dlq-') && k !== HEADERS.REDRIVE_STAGE && k !== HEADERS.REDRIVE_LETTER)
      out[k] = v;
  }
  return out;
}
