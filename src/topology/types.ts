// The declarative graph: topics (name, partitions, cleanup policy, schema) and stages (action or
// observer) that read topics and emit to others. Domains declare these; the engine runs them.
import type { Db } from 'mongodb';
import type { z } from 'zod';

export type CleanupPolicy = 'delete' | 'compact';

/** An Avro schema (as JSON) paired with the zod schema that every decoded value must satisfy. */
export interface ValueSchema<T = unknown> {
  avro: Record<string, unknown>;
  zod: z.ZodType<T>;
}

export interface TopicSpec<T = unknown> {
  name: string;
  partitions: number;
  replicationFactor: number;
  cleanupPolicy: CleanupPolicy;
  /** retention.ms; undefined keeps the broker default; -1 keeps forever. */
  retentionMs?: number;
  /** What the key holds, for docs and `keyflow topology` (e.g. "appointmentId"). */
  key: string;
  /** Registered as `<name>-value` with BACKWARD compatibility. Dead-letter topics carry raw bytes: none. */
  value?: ValueSchema<T>;
  /** Extra topic configs (e.g. min.compaction.lag.ms); checked on start like cleanup.policy. */
  configs?: Record<string, string>;
}

/** A record a stage emits. Its event id is derived from the cause, so a re-emission is recognisable. */
export interface OutRecord<T = unknown> {
  topic: string;
  key: string;
  value: T;
  /** Defaults to the cause's occurredAt. */
  occurredAt?: number;
}

/** What a handler sees of one consumed event. */
export interface StageEvent<T = unknown> {
  key: string;
  value: T;
  eventId: string;
  occurredAt: number | undefined;
  tenantId: string | undefined;
  traceId: string;
  topic: string;
  partition: number;
  offset: string;
  attempt: number;
  headers: Record<string, string>;
  consumedAt: number;
  /**
   * Set when `keyflow dlq replay` re-drove this event from its dead letter (`letter`: the letter's id).
   * A stage comparing stored positions uses positionOf/sameRecord (src/state/input-position.ts), which
   * read it: a re-drive stands for the record the letter was written for.
   */
  redrive?: { letter: string };
}

/** Outcome a handler reports; `duplicate` means the effect was already applied earlier. */
export type EffectOutcome = 'applied' | 'duplicate' | 'skipped';

export interface Decision<P> {
  /** What to write; null when the event changes nothing. */
  plan: P | null;
  emit: OutRecord[];
  /** The event is older than what was already applied for its entity. */
  outOfOrder?: boolean;
}

/** What a handler gets from the engine besides the event: the store and the clock. */
export interface ActionContext {
  stage: string;
  db: Db;
  now(): number;
  /**
   * With entity locking on, the fencing token of the lease this key's event runs under: pass it to
   * applyOnce (`fence`) so a write made after the lease was lost cannot overwrite the next holder's.
   * Guarded writes (src/state/bulk.ts) are fenced by their own version guard.
   */
  fence?(key: string): number | undefined;
}

/**
 * A per-event action stage (the simple shape; a busy stage wants BatchActionHandler below): read
 * state → decide (pure, no I/O) → write the plan, one event at a time per key. write() must
 * be idempotent for a redelivered event (see src/state/guard.ts) and report whether it applied.
 */
export interface ActionHandler<E, S, P> {
  read(event: StageEvent<E>, ctx: ActionContext): Promise<S>;
  decide(event: StageEvent<E>, state: S): Decision<P>;
  write(plan: P, event: StageEvent<E>, ctx: ActionContext): Promise<EffectOutcome>;
}

/** What decide() made of one event in a batch: its decision and the state the key's next event sees. */
export interface Step<S, P> extends Decision<P> {
  /** The state after this event: the next event of the same state key in the batch decides against it. */
  state: S;
  /** Defaults to 'applied' for a plan and 'skipped' for none; 'duplicate' when the event was already applied. */
  outcome?: EffectOutcome;
}

/** One decided event, as write() receives it: `index` is its place in the batch's plan list. */
export interface Planned<E, P> {
  index: number;
  event: StageEvent<E>;
  plan: P;
}

/** What write() could not do: the plans that failed, by index, and why. Every other plan was written. */
export interface WriteReport {
  failed: { index: number; error: unknown }[];
}

/**
 * A stage that handles what one fetch delivered as a whole (see README "The batch handler API"):
 *  - read(events): the state of every entity the events touch, ONE query per table, by _id ($in);
 *  - decide(event, state): pure; the runner folds each state key's events through it in offset order,
 *    so a key with 50 events in the batch is read once and written once;
 *  - write(plans): the batch's effects as one unordered bulkWrite per collection, each operation
 *    carrying its own guard. A failed operation is reported against the plans it came from: those
 *    events (and the later events of their key) retry or dead-letter, the rest of the batch commits.
 * Plans reach write() in offset order; a handler that writes one document for several plans (the
 * folded state of a key) must write what the LAST of them decided, guarded on what read() saw.
 */
export interface BatchActionHandler<E, S, P> {
  /** Groups events whose state is one document (default: the message key). Must refine the key. */
  stateKey?(event: StageEvent<E>): string;
  read(events: readonly StageEvent<E>[], ctx: ActionContext): Promise<ReadonlyMap<string, S>>;
  decide(event: StageEvent<E>, state: S): Step<S, P>;
  write(plans: readonly Planned<E, P>[], ctx: ActionContext): Promise<WriteReport>;
}

/** An observer reacts to committed changes only (it consumes change topics), with side effects. */
export interface ObserverHandler<E> {
  observe(event: StageEvent<E>, ctx: ActionContext): Promise<{ outcome: EffectOutcome; emit?: OutRecord[] }>;
}

/** What happens to a key's later events once one of its events is dead-lettered. */
export type DeadLetterPolicy = 'park-key' | 'skip';

interface StageBase {
  /** Also the consumer group id and the dead-letter topic's prefix (`<name>.dlq`). */
  name: string;
  inputs: string[];
  outputs: string[];
  description?: string;
  /** Default 'park-key': later events of a dead-lettered key wait in the dead-letter topic behind it. */
  onDeadLetter?: DeadLetterPolicy;
  /** Overrides KEYFLOW_MAX_ATTEMPTS for this stage. */
  maxAttempts?: number;
  /**
   * Records to emit, with the dead letter, when one of this stage's events is dead-lettered (not when it
   * only waits behind a parked key): lets a stage that skips past dead letters close out their entity.
   * Pure; the value is the decoded, validated event value.
   */
  onDeadLettered?: (event: StageEvent, error: { code: string; message: string }) => OutRecord[];
  /**
   * The entity id a decoded value of `topic` names, for inputs whose key contract is "key = that id"
   * (e.g. a conversion's leadId). A record whose key differs is dead-lettered as KEY_MISMATCH before
   * the handler sees it: state is grouped by key, so a record keyed otherwise would be folded apart
   * from its entity's other events. Undefined (or no function) leaves the input's key unchecked.
   */
  entityKey?: (value: unknown, topic: string) => string | undefined;
  /** Picks the event id and event time out of a decoded value when upstream sent no Keyflow headers. */
  eventId?: (value: unknown) => string | undefined;
  occurredAt?: (value: unknown) => number | undefined;
  tenantId?: (value: unknown) => string | undefined;
}

// The defaults are `any` on purpose: a topology holds stages of many event types, and a handler typed
// for its own events (a contravariant parameter) is not assignable to one typed for `unknown`.
/* eslint-disable @typescript-eslint/no-explicit-any */
export interface ActionStageSpec<E = any, S = any, P = any> extends StageBase {
  kind: 'action';
  handler: ActionHandler<E, S, P>;
}

export interface BatchStageSpec<E = any, S = any, P = any> extends StageBase {
  kind: 'batch';
  handler: BatchActionHandler<E, S, P>;
}

export interface ObserverStageSpec<E = any> extends StageBase {
  kind: 'observer';
  handler: ObserverHandler<E>;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

export type StageSpec = BatchStageSpec | ActionStageSpec | ObserverStageSpec;

export interface Topology {
  topics: TopicSpec[];
  stages: StageSpec[];
}
