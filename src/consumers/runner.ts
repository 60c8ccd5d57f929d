// The stage runner: one consumer group per stage. Inside a partition, a key's events run in order
// while different keys run concurrently (key lanes); offsets are committed only up to the end of the
// prefix whose effects — state writes, emitted records, dead letters — are complete.
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Db } from 'mongodb';
import { classify, KeyflowError } from '../errors';
import { EVENTS, type HandledEvent, type Instrumentation } from '../instrumentation';
import type { Logger } from '../logger';
import { HEADERS, headersToStrings, newTraceId, parseTraceparent } from '../producers/headers';
import type { KeyedProducer } from '../producers/producer';
import type { Causation, WireRecord } from '../producers/types';
import type { EffectOutcome, OutRecord, StageEvent, StageSpec } from '../topology/types';
import {
  dlqRecord,
  hasOpenLetters,
  hasParkedLetters,
  letterId,
  openKeys,
  recordLetter,
  resolveLetter,
  type LetterInput,
} from './dead-letters';
import { groupByKey, OffsetTracker, runLanes } from './lanes';
import type { RunnerOptions } from './options';
import { decideRetry } from './retry';
import type { EntityLeases, RuntimeSwitches, ValueDecoder } from './types';

export interface RunnerDeps {
  kafka: Kafka;
  decoder: ValueDecoder;
  producer: KeyedProducer;
  /** Its indexes (dead letters among them) are created by the Processor before any runner starts. */
  db: Db;
  log: Logger;
  instrumentation: Instrumentation;
  leases?: EntityLeases;
  runtime?: () => RuntimeSwitches;
}

/** Thrown inside a lane when the stage stops while an event waits for its retry: it stays uncommitted. */
class StopRequested extends Error {}

/** Per-batch bookkeeping: what is done, what waits for the next flush, what was committed. */
interface BatchState {
  topic: string;
  partition: number;
  tracker: OffsetTracker;
  pendingOffsets: string[];
  pendingRecords: WireRecord[];
  lastFlush: number;
  flushChain: Promise<void>;
  lost: boolean;
  resolveOffset: (offset: string) => void;
  /** Commits through the batch's group handle, which (unlike consumer.commitOffsets) still works while stopping. */
  commit: EachBatchPayload['commitOffsetsIfNecessary'];
}

interface Timings {
  readStartedAt?: number;
  decideStartedAt?: number;
  writeStartedAt?: number;
  emitStartedAt?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const asRecord = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};

export class StageRunner {
  private consumer: Consumer | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private readonly parked = new Set<string>();
  private parkedLoaded: Promise<void> = Promise.resolve();
  private readonly log: Logger;
  private assigned = 0;
  private joined = false;

  constructor(
    readonly spec: StageSpec,
    private readonly deps: RunnerDeps,
    private readonly opts: RunnerOptions,
  ) {
    this.log = deps.log.child({ stage: spec.name });
  }

  get name(): string {
    return this.spec.name;
  }

  /** True once the consumer has joined its group (readiness). */
  get ready(): boolean {
    return this.joined && !this.stopping;
  }

  get parkedKeys(): ReadonlySet<string> {
    return this.parked;
  }

  async start(): Promise<void> {
    const { kafka, instrumentation } = this.deps;
    const consumer = kafka.consumer({
      groupId: this.spec.name,
      sessionTimeout: this.opts.sessionTimeoutMs,
      heartbeatInterval: this.opts.heartbeatIntervalMs,
      maxWaitTimeInMs: this.opts.maxWaitTimeInMs,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assignment = e.payload.memberAssignment as Record<string, number[]>;
      this.assigned = Object.values(assignment).reduce((n, ps) => n + ps.length, 0);
      this.joined = true;
      // Another instance may have parked keys of the partitions we now own: reload before processing.
      this.parkedLoaded = this.reloadParked();
      instrumentation.emit(EVENTS.STAGE_REBALANCE, {
        stage: this.spec.name,
        assigned: Object.entries(assignment).map(([topic, partitions]) => ({ topic, partitions })),
      });
    });
    consumer.on(consumer.events.CRASH, (e) => {
      this.joined = false;
      this.log.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
    });
    await consumer.connect();
    for (const topic of this.spec.inputs) {
      await consumer.subscribe({ topic, fromBeginning: this.opts.fromBeginning });
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.partitionsConsumedConcurrently,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    instrumentation.emit(EVENTS.STAGE_START, { stage: this.spec.name });
    this.log.info({ inputs: this.spec.inputs, kind: this.spec.kind }, 'stage started');
  }

  /**
   * Graceful stop: lanes take no new event, in-flight events finish, completed work is flushed and
   * committed, then the consumer leaves its group. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      await this.consumer?.disconnect();
      this.joined = false;
      this.deps.instrumentation.emit(EVENTS.STAGE_STOP, { stage: this.spec.name });
      this.log.info({ assigned: this.assigned }, 'stage stopped');
    })();
    return this.stopped;
  }

  private async reloadParked(): Promise<void> {
    if ((this.spec.onDeadLetter ?? 'park-key') !== 'park-key') return;
    const keys = await this.infra(
      () => openKeys(this.deps.db, this.spec.name),
      () => true,
    );
    this.parked.clear();
    for (const k of keys) this.parked.add(k);
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary } = payload;
    if (batch.isEmpty()) return;
    const { instrumentation } = this.deps;
    const started = Date.now();
    const state: BatchState = {
      topic: batch.topic,
      partition: batch.partition,
      tracker: new OffsetTracker(batch.messages.map((m) => m.offset)),
      pendingOffsets: [],
      pendingRecords: [],
      lastFlush: started,
      flushChain: Promise.resolve(),
      lost: false,
      resolveOffset,
      commit: commitOffsetsIfNecessary,
    };
    instrumentation.emit(EVENTS.BATCH_START, {
      stage: this.spec.name,
      topic: batch.topic,
      partition: batch.partition,
      size: batch.messages.length,
      lag: Number(batch.offsetLag()),
    });
    const keepGoing = () => !this.stopping && isRunning() && !isStale() && !state.lost;
    // Heartbeats go on while lanes work, so a long batch never costs the partition.
    const beat = setInterval(() => {
      heartbeat().catch((err) => this.log.debug({ err }, 'heartbeat failed'));
    }, this.opts.heartbeatIntervalMs);
    await this.parkedLoaded;
    let failure: unknown;
    try {
      // A message without a key gets a lane of its own; it is dead-lettered as KEY_MISSING.
      const lanes = groupByKey(batch.messages, (m) => m.key?.toString() ?? `\u0000${m.offset}`);
      await runLanes(
        lanes,
        this.opts.keyLanes,
        (m) => this.handle(state, m, keepGoing),
        keepGoing,
        (busy) =>
          instrumentation.emit(EVENTS.LANES_BUSY, {
            stage: this.spec.name,
            partition: batch.partition,
            busy,
          }),
      );
    } catch (err) {
      if (!(err instanceof StopRequested)) failure = err;
    } finally {
      clearInterval(beat);
    }
    // Whatever finished is flushed and committed even when a lane failed; the rest is redelivered.
    await this.flush(state);
    instrumentation.emit(EVENTS.BATCH_END, {
      stage: this.spec.name,
      topic: batch.topic,
      partition: batch.partition,
      size: batch.messages.length,
      durationMs: Date.now() - started,
    });
    if (failure) throw failure;
  }

  /** Sends pending records, marks their events complete, commits the completed prefix. Serialised. */
  private flush(state: BatchState): Promise<void> {
    state.flushChain = state.flushChain.then(async () => {
      if (state.lost) return;
      const records = state.pendingRecords.splice(0);
      const offsets = state.pendingOffsets.splice(0);
      state.lastFlush = Date.now();
      if (records.length) {
        await this.infra(
          () => this.deps.producer.sendNow(records),
          () => !this.stopping,
        );
      }
      for (const o of offsets) state.tracker.complete(o);
      const newly = state.tracker.takeCommittable();
      const last = newly[newly.length - 1];
      if (last === undefined) return;
      state.resolveOffset(last);
      try {
        await state.commit({
          topics: [
            {
              topic: state.topic,
              partitions: [{ partition: state.partition, offset: (BigInt(last) + 1n).toString() }],
            },
          ],
        });
      } catch (err) {
        // The group moved on (rebalance): this partition may belong to another instance now. Its
        // effects are idempotent, so the new owner redoing our uncommitted tail is safe.
        state.lost = true;
        this.log.warn({ err, partition: state.partition }, 'commit refused; partition likely reassigned');
        return;
      }
      this.deps.instrumentation.emit(EVENTS.BATCH_COMMITTED, {
        stage: this.spec.name,
        topic: state.topic,
        partition: state.partition,
        offset: last,
        committedAt: Date.now(),
        positions: newly.map((o) => `${state.topic}:${state.partition}:${o}`),
      });
    });
    return state.flushChain;
  }

  /** Marks one event's effects as waiting for the next flush; flushes when enough is pending. */
  private async settle(state: BatchState, offset: string, records: WireRecord[]): Promise<void> {
    state.pendingOffsets.push(offset);
    state.pendingRecords.push(...records);
    if (
      state.pendingRecords.length >= this.opts.flushMaxRecords ||
      state.pendingOffsets.length >= this.opts.flushMaxRecords * 4 ||
      Date.now() - state.lastFlush >= this.opts.flushIntervalMs
    ) {
      await this.flush(state);
    }
  }

  /** Runs a call against our own infrastructure, retrying transient failures while `keepGoing()`. */
  private async infra<T>(fn: () => Promise<T>, keepGoing: () => boolean): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const e = classify(err);
        if (!e.retriable || !keepGoing()) throw e;
        const d = decideRetry(this.opts.retry, e, attempt);
        const delay = d.action === 'retry' ? d.delayMs : this.opts.retry.maxMs;
        this.log.warn({ err: e, attempt, delay }, 'infrastructure call failed; retrying');
        await sleep(delay);
      }
    }
  }

  private async handle(state: BatchState, m: KafkaMessage, keepGoing: () => boolean): Promise<void> {
    const consumedAt = Date.now();
    const headers = headersToStrings(m.headers);
    const key = m.key ? m.key.toString() : null;
    const redriveStage = headers[HEADERS.REDRIVE_STAGE];
    const base = { topic: state.topic, partition: state.partition, offset: m.offset, consumedAt, headers };

    // A re-driven record is meant for one stage; the others sharing its topic let it pass.
    if (redriveStage !== undefined && redriveStage !== this.spec.name) {
      return this.settle(state, m.offset, []);
    }
    const redriveLetter = redriveStage !== undefined ? headers[HEADERS.REDRIVE_LETTER] : undefined;
    const fallbackId = headers[HEADERS.EVENT_ID] ?? `${state.topic}:${state.partition}:${m.offset}`;

    if (key === null) {
      const err = new KeyflowError('KEY_MISSING', `a message on ${state.topic} has no key`);
      return this.deadLetter(state, m, null, fallbackId, err, 1, consumedAt, base, redriveLetter);
    }
    if (m.value === null) {
      // A tombstone carries no event for an action to apply; compacted inputs use it to delete.
      this.report(base, key, fallbackId, undefined, {}, 1, 'skipped', false, undefined, []);
      return this.settle(state, m.offset, []);
    }

    let value: unknown;
    try {
      value = (await this.infra(() => this.deps.decoder.decode(state.topic, m.value!), keepGoing)).value;
    } catch (err) {
      const e = classify(err);
      if (e.retriable) throw new StopRequested();
      return this.deadLetter(state, m, key, fallbackId, e, 1, consumedAt, base, redriveLetter);
    }

    const v = asRecord(value);
    const eventId =
      headers[HEADERS.EVENT_ID] ??
      this.spec.eventId?.(value) ??
      (typeof v.eventId === 'string' ? v.eventId : undefined) ??
      fallbackId;
    const occurredHeader = Number(headers[HEADERS.OCCURRED_AT]);
    const occurredAt = Number.isFinite(occurredHeader)
      ? occurredHeader
      : (this.spec.occurredAt?.(value) ?? (typeof v.occurredAt === 'number' ? v.occurredAt : undefined));
    const tenantId =
      headers[HEADERS.TENANT_ID] ??
      this.spec.tenantId?.(value) ??
      (typeof v.tenantId === 'string' ? v.tenantId : undefined);
    const traceId = parseTraceparent(headers[HEADERS.TRACEPARENT])?.traceId ?? newTraceId();

    // Per-key order survives dead letters: later events of a parked key wait behind it. A re-driven
    // event waits too while any letter of its key is parked (say an earlier re-drive failed again).
    const mustWait =
      redriveLetter === undefined
        ? this.parked.has(key)
        : await this.infra(() => hasParkedLetters(this.deps.db, this.spec.name, key), keepGoing);
    if (mustWait) {
      const err = new KeyflowError('KEY_PARKED', `key ${key} has an earlier event in ${this.spec.name}.dlq`);
      return this.deadLetter(
        state,
        m,
        key,
        eventId,
        err,
        0,
        consumedAt,
        base,
        redriveLetter,
        tenantId,
        occurredAt,
      );
    }

    for (let attempt = 1; ; attempt++) {
      const event: StageEvent = {
        key,
        value,
        eventId,
        occurredAt,
        tenantId,
        traceId,
        topic: state.topic,
        partition: state.partition,
        offset: m.offset,
        attempt,
        headers,
        consumedAt,
      };
      const t: Timings = {};
      try {
        const { outcome, emit, outOfOrder } = await this.invoke(event, t);
        t.emitStartedAt = Date.now();
        const cause: Causation = { eventId, stage: this.spec.name, traceId, attempt, tenantId };
        const records = await Promise.all(
          emit.map((o, i) =>
            this.deps.producer.prepare(
              { topic: o.topic, key: o.key, value: o.value, occurredAt: o.occurredAt ?? occurredAt },
              cause,
              i,
            ),
          ),
        );
        if (redriveLetter !== undefined) await this.clearLetter(redriveLetter, key, keepGoing);
        this.report(
          base,
          key,
          eventId,
          { tenantId, occurredAt, traceId },
          t,
          attempt,
          outcome,
          outOfOrder,
          undefined,
          records.map((r) => r.eventId),
        );
        return this.settle(state, m.offset, records);
      } catch (err) {
        if (err instanceof StopRequested) throw err;
        const e = classify(err);
        const d = decideRetry(
          { ...this.opts.retry, maxAttempts: this.spec.maxAttempts ?? this.opts.retry.maxAttempts },
          e,
          attempt,
        );
        if (d.action === 'dead-letter') {
          return this.deadLetter(
            state,
            m,
            key,
            eventId,
            e,
            attempt,
            consumedAt,
            base,
            redriveLetter,
            tenantId,
            occurredAt,
          );
        }
        this.deps.instrumentation.emit(EVENTS.EVENT_RETRY, {
          stage: this.spec.name,
          key,
          eventId,
          attempt,
          code: e.code,
          delayMs: d.delayMs,
        });
        this.log.warn(
          { key, eventId, attempt, code: e.code, delayMs: d.delayMs, err: e.message },
          'retrying event',
        );
        await this.sleepUnlessStopping(d.delayMs, keepGoing);
      }
    }
  }

  private async sleepUnlessStopping(ms: number, keepGoing: () => boolean): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (!keepGoing()) throw new StopRequested();
      await sleep(Math.min(100, until - Date.now()));
    }
  }

  /** Runs the stage's handler under the entity lease when locking is switched on. */
  private async invoke(
    event: StageEvent,
    t: Timings,
  ): Promise<{ outcome: EffectOutcome; emit: OutRecord[]; outOfOrder: boolean }> {
    const locking = this.deps.runtime?.().entityLocking === 'lease' && this.deps.leases !== undefined;
    if (locking) await this.deps.leases!.acquire(event.key, this.opts.instanceId, this.opts.leaseTtlMs);
    try {
      const spec = this.spec;
      const ctx = { stage: spec.name, db: this.deps.db, now: () => Date.now() };
      if (spec.kind === 'observer') {
        t.writeStartedAt = Date.now();
        const r = await spec.handler.observe(event, ctx);
        return { outcome: r.outcome, emit: r.emit ?? [], outOfOrder: false };
      }
      t.readStartedAt = Date.now();
      const state = await spec.handler.read(event, ctx);
      t.decideStartedAt = Date.now();
      const decision = spec.handler.decide(event, state);
      let outcome: EffectOutcome = 'skipped';
      if (decision.plan !== null) {
        t.writeStartedAt = Date.now();
        outcome = await spec.handler.write(decision.plan, event, ctx);
      }
      return { outcome, emit: decision.emit, outOfOrder: decision.outOfOrder === true };
    } finally {
      if (locking) {
        await this.deps
          .leases!.release(event.key, this.opts.instanceId)
          .catch((err) =>
            this.log.warn({ err, key: event.key }, 'lease release failed; it expires by itself'),
          );
      }
    }
  }

  private async clearLetter(id: string, key: string, keepGoing: () => boolean): Promise<void> {
    await this.infra(() => resolveLetter(this.deps.db, id), keepGoing);
    const stillOpen = await this.infra(() => hasOpenLetters(this.deps.db, this.spec.name, key), keepGoing);
    if (!stillOpen) this.parked.delete(key);
  }

  private async deadLetter(
    state: BatchState,
    m: KafkaMessage,
    key: string | null,
    eventId: string,
    err: KeyflowError,
    attempts: number,
    consumedAt: number,
    base: {
      topic: string;
      partition: number;
      offset: string;
      consumedAt: number;
      headers: Record<string, string>;
    },
    redriveLetter: string | undefined,
    tenantId?: string,
    occurredAt?: number,
  ): Promise<void> {
    const park = (this.spec.onDeadLetter ?? 'park-key') === 'park-key' && key !== null;
    const input: LetterInput = {
      id: redriveLetter ?? letterId(this.spec.name, state.topic, state.partition, m.offset),
      stage: this.spec.name,
      key,
      eventId,
      topic: state.topic,
      partition: state.partition,
      offset: m.offset,
      value: m.value,
      headers: stripDlqHeaders(base.headers),
      code: err.code,
      message: err.message,
      attempts,
      firstFailedAt: consumedAt,
      status: park ? 'parked' : 'dead',
    };
    await this.infra(
      () => recordLetter(this.deps.db, input),
      () => !this.stopping,
    );
    if (park) this.parked.add(key!);
    this.deps.instrumentation.emit(EVENTS.EVENT_DEAD_LETTERED, {
      stage: this.spec.name,
      key: key ?? '',
      eventId,
      code: err.code,
      attempts,
    });
    this.log.warn({ key, eventId, code: err.code, attempts, err: err.message }, 'event dead-lettered');
    this.report(
      base,
      key ?? '',
      eventId,
      { tenantId, occurredAt, traceId: undefined },
      {},
      attempts,
      err.code === 'KEY_PARKED' ? 'parked' : 'dead-lettered',
      false,
      err,
      [],
    );
    return this.settle(state, m.offset, [dlqRecord(input)]);
  }

  private report(
    base: { topic: string; partition: number; offset: string; consumedAt: number },
    key: string,
    eventId: string,
    ids: { tenantId?: string; occurredAt?: number; traceId?: string } | undefined,
    t: Timings,
    attempt: number,
    outcome: HandledEvent['outcome'],
    outOfOrder: boolean,
    err: KeyflowError | undefined,
    emitted: string[],
  ): void {
    this.deps.instrumentation.emit(EVENTS.EVENT_HANDLED, {
      stage: this.spec.name,
      topic: base.topic,
      partition: base.partition,
      offset: base.offset,
      key,
      eventId,
      traceId: ids?.traceId,
      tenantId: ids?.tenantId,
      occurredAt: ids?.occurredAt,
      consumedAt: base.consumedAt,
      readStartedAt: t.readStartedAt,
      decideStartedAt: t.decideStartedAt,
      writeStartedAt: t.writeStartedAt,
      emitStartedAt: t.emitStartedAt,
      finishedAt: Date.now(),
      attempt,
      outcome,
      outOfOrder,
      errorCode: err?.code,
      errorMessage: err?.message,
      emitted,
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
