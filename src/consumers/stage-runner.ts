// The stage runner: one consumer group per stage. Each delivery (one fetched batch of one partition)
// is opened into events, admitted (parked keys held back), executed in rounds (a round's failures
// retry in the next round or are dead-lettered, as the stage's failure strategy says), and settled
// into the commit window, which sends the records and commits only the completed prefix.
import { classify } from '../errors';
import { EVENTS } from '../instrumentation';
import type { Logger } from '../logger';
import { mongoLetterStore } from '../state/dead-letters';
import { recordSkippedRange } from '../state/skipped-ranges';
import { groupIdFor } from '../topology/names';
import type { StageEvent, StageSpec } from '../topology/types';
import { DeadLetters, type Dying } from './dead-letter';
import { openEnvelope, type Envelope, type Runnable } from './envelope';
import { executorFor, runRound, type Executor } from './executor';
import { strategyFor, type FailureStrategy } from './failure';
import { StageGroup, type Delivery } from './group';
import { LeaseManager } from './lease-manager';
import { groupOptions, type RunnerOptions } from './options';
import type { EventOutcome } from './outcome';
import { ParkedKeys } from './parked-keys';
import { stageRetention, type SkippedRange } from './retention';
import { pause, retrying } from './retry';
import { RetryLog } from './retry-log';
import { triage, type TriageOptions } from './triage';
import { Settlement } from './settlement';
import type { RunnerDeps } from './types';

export type { RunnerDeps };

/** One delivery being worked on: where it came from, how it settles, and whether to go on. */
interface Run {
  d: Delivery;
  settle: Settlement;
  keepGoing: () => boolean;
}

export class StageRunner {
  private group: StageGroup | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly parked: ParkedKeys;
  private readonly strategy: FailureStrategy;
  private readonly letters: DeadLetters;
  private readonly executor: Executor;
  private readonly triage: TriageOptions;
  private readonly retryLog: RetryLog;
  private assigned = 0;
  private joined = false;

  constructor(
    readonly spec: StageSpec,
    private readonly deps: RunnerDeps,
    private readonly opts: RunnerOptions,
  ) {
    this.log = deps.log.child({ stage: spec.name });
    this.retryLog = new RetryLog(this.log);
    const keepGoing = () => !this.stopping;
    const infra = <T>(fn: () => Promise<T>) => this.infra(fn, keepGoing);
    const store = deps.letters ?? mongoLetterStore(deps.db, opts.deadLetterRetentionMs);
    this.parked = new ParkedKeys({ stage: spec.name, store, infra, log: this.log, keepGoing });
    this.strategy = strategyFor(spec, opts.retry, this.parked);
    const base = { spec, store, log: this.log, infra, strategy: this.strategy, parked: this.parked };
    this.letters = new DeadLetters({ ...deps, ...opts, ...base });
    const stage = spec.name;
    this.triage = { ...deps, stage, strategy: this.strategy, letters: this.letters, log: this.log };
    this.executor = executorFor(spec, { ...deps, keyLanes: opts.keyLanes });
  }

  get name(): string {
    return this.spec.name;
  }

  /** True once the consumer has joined its group (readiness). */
  /** Partitions the group gave this member at its latest join. */
  get assignedPartitions(): number {
    return this.assigned;
  }

  get ready(): boolean {
    return this.joined && !this.stopping;
  }

  get parkedKeys(): ReadonlySet<string> {
    return this.parked.current;
  }

  async start(): Promise<void> {
    const { deps, opts, spec } = this;
    const groupId = deps.groupId ?? groupIdFor(opts.applicationId, spec.name);
    const record = deps.recordSkipped ?? ((r: SkippedRange) => recordSkippedRange(deps.db, r));
    const { instrumentation, offsets } = deps;
    const retention = offsets && {
      ...{ stage: spec.name, groupId, offsets, instrumentation, log: this.log, startAt: opts.startAt },
      record: (r: SkippedRange) =>
        this.infra(
          () => record(r),
          () => !this.stopping,
        ),
    };
    this.group = new StageGroup({
      member: deps.member,
      group: groupOptions(opts, groupId, spec.inputs),
      heartbeatIntervalMs: opts.heartbeatIntervalMs,
      log: this.log,
      ingest: deps.ingest,
      retention: retention && stageRetention(retention),
      events: {
        onJoin: (assigned) => {
          this.assigned = assigned.reduce((n, a) => n + a.partitions.length, 0);
          this.joined = true;
          this.strategy.onJoin();
          deps.instrumentation.emit(EVENTS.STAGE_REBALANCE, { stage: spec.name, assigned });
        },
        onCrash: (err, restart) => {
          this.joined = false;
          this.log.error({ err, restart }, 'consumer crashed');
        },
      },
    });
    await this.group.start((d) => this.work(d));
    deps.instrumentation.emit(EVENTS.STAGE_START, { stage: spec.name });
    this.log.info({ inputs: spec.inputs, kind: spec.kind }, 'stage started');
  }

  /**
   * Graceful stop: no new round starts, the round in flight finishes, completed work is flushed and
   * committed, then the consumer leaves its group. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      await this.group?.stop();
      this.joined = false;
      this.deps.instrumentation.emit(EVENTS.STAGE_STOP, { stage: this.spec.name });
      this.log.info({ assigned: this.assigned }, 'stage stopped');
    })();
    return this.stopped;
  }

  /** An infrastructure call, retried while `keepGoing` holds, for at most the in-batch retry budget. */
  private infra<T>(fn: () => Promise<T>, keepGoing: () => boolean): Promise<T> {
    return retrying(fn, {
      policy: this.opts.retry,
      budgetMs: this.opts.infraRetryBudgetMs,
      keepGoing,
      giveUp: classify,
      onRetry: (err, attempt, delay) => this.retryLog.retrying(err, attempt, delay),
    });
  }

  /** Delivery → admit → execute in rounds → settle. What is not settled when it ends is redelivered. */
  private async work(d: Delivery): Promise<void> {
    const { instrumentation } = this.deps;
    const where = { stage: this.spec.name, topic: d.topic, partition: d.partition };
    const started = Date.now();
    const limits = { maxRecords: this.opts.flushMaxRecords, intervalMs: this.opts.flushIntervalMs };
    const settle = new Settlement({
      ...{ ...this.deps, stage: this.spec.name, delivery: d, letters: this.letters, log: this.log, limits },
      infra: (fn, keepGoing) => this.infra(fn, keepGoing),
      running: () => !this.stopping,
    });
    instrumentation.emit(EVENTS.BATCH_START, { ...where, size: d.messages.length, lag: d.lag });
    // A delivery the group took back (or a refused commit) takes no new event; the round in flight settles.
    const run: Run = { d, settle, keepGoing: () => !this.stopping && d.active() && !settle.lost };
    let failure: unknown;
    try {
      await this.parked.ready();
      const { decoder, compacted } = this.deps;
      const open = { ...where, spec: this.spec, decoder, consumedAt: Date.now(), compacted };
      const envelopes = await Promise.all(
        d.messages.map((m) => this.infra(() => openEnvelope(m, open), run.keepGoing)),
      );
      await this.rounds(await this.admit(envelopes, run), run);
    } catch (err) {
      // Our infrastructure stayed down until the stage stopped: what is unsettled is redelivered.
      if (run.keepGoing()) failure = err;
    }
    // Whatever finished is flushed and committed even when a round failed; the rest is redelivered.
    await settle.flush();
    const durationMs = Date.now() - started;
    instrumentation.emit(EVENTS.BATCH_END, { ...where, size: d.messages.length, durationMs });
    if (failure) throw failure;
  }

  /**
   * Settles what needs no handler (tombstones, re-drives for other stages), dead-letters what cannot be
   * an event, and holds back events of parked keys. Returns the events for the handler, in offset order.
   */
  private async admit(envelopes: Envelope[], run: Run): Promise<Runnable[]> {
    const fresh = envelopes.flatMap((e) =>
      e.kind === 'event' && e.item.redriveLetter === undefined ? [e.item.key] : [],
    );
    await this.strategy.beforeAdmit(fresh);
    const work: Runnable[] = [];
    const dying: Dying[] = [];
    /** Per key, the letters re-driven earlier in this batch and admitted: later ones may follow them. */
    const ahead = new Map<string, Set<string>>();
    for (const env of envelopes) {
      if (env.kind === 'pass') await run.settle.pass(env.item, env.report);
      else if (env.kind === 'dead') dying.push(this.letters.doom(env.item, env.error, 1));
      else {
        const { item } = env;
        const turn = await this.parked.turn(item.key, item.redriveLetter, ahead.get(item.key));
        if (turn === 'wait') dying.push(this.letters.waiting(item));
        // A second copy of a re-drive that already applied: nothing left to do.
        else if (turn === 'done') await run.settle.pass(item, true);
        else {
          if (item.redriveLetter !== undefined)
            ahead.set(item.key, new Set(ahead.get(item.key)).add(item.redriveLetter));
          work.push(item);
        }
      }
    }
    await run.settle.dead(dying);
    return work;
  }

  /** Runs rounds until every event is settled, or the delivery must stop (its rest is redelivered). */
  private async rounds(work: Runnable[], run: Run): Promise<void> {
    let round = work;
    while (round.length > 0 && run.keepGoing()) {
      const outcomes = await this.execute(
        round.map((p) => p.event),
        run,
      );
      const { done, dying, next, delayMs } = triage(round, outcomes, this.triage);
      await run.settle.done(done, run.keepGoing);
      await run.settle.dead(dying);
      round = next;
      if (round.length > 0 && delayMs !== Infinity) await pause(delayMs, run.keepGoing);
    }
  }

  /** The stage's executor over one round, under entity leases when locking is switched on. */
  private execute(events: StageEvent[], run: Run): Promise<EventOutcome[]> {
    const { deps, opts, spec } = this;
    const leases = deps.runtime?.().entityLocking === 'lease' ? deps.leases : undefined;
    // The owner names the lane: two stages of one process, or two partitions of one stage, hold an
    // entity's lease in turn, never both at once.
    const owner = `${opts.instanceId}:${spec.name}:${run.d.topic}:${run.d.partition}`;
    return runRound(events, {
      executor: this.executor,
      ctx: { stage: spec.name, db: deps.db, now: () => Date.now() },
      keepGoing: run.keepGoing,
      leases: leases && new LeaseManager({ leases, owner, ttlMs: opts.leaseTtlMs, log: this.log }),
    });
  }
}
