// The one registry of event names the engine emits. Metrics and provenance subscribe to these
// instead of being called from the hot loop; a throwing listener is logged and never stops it.
import type { Logger } from './logger';

export const EVENTS = {
  STAGE_START: 'stage.start',
  STAGE_STOP: 'stage.stop',
  STAGE_REBALANCE: 'stage.rebalance',
  BATCH_START: 'stage.batch.start',
  BATCH_END: 'stage.batch.end',
  BATCH_COMMITTED: 'stage.batch.committed',
  EVENT_HANDLED: 'stage.event.handled',
  EVENT_RETRY: 'stage.event.retry',
  EVENT_DEAD_LETTERED: 'stage.event.dead_lettered',
  LANES_BUSY: 'stage.lanes.busy',
  OFFSETS_SKIPPED: 'stage.offsets.skipped',
  SETTINGS_APPLIED: 'settings.applied',
  SETTINGS_REJECTED: 'settings.rejected',
} as const;

export type EventName = (typeof EVENTS)[keyof typeof EVENTS];

/** Where an event was handled and what became of it: the payload of `stage.event.handled`. */
export interface HandledEvent {
  stage: string;
  topic: string;
  partition: number;
  offset: string;
  key: string;
  eventId: string;
  traceId: string | undefined;
  /**
   * The input record's `traceparent` header as it arrived (undefined when it had none): the parent of
   * the event's process span. A runner that leaves the key out makes the tracer assume the record came
   * from Keyflow, whose traceparent it can derive (see recordSpanId in src/producers/headers.ts).
   */
  traceparent?: string | undefined;
  tenantId: string | undefined;
  occurredAt: number | undefined;
  consumedAt: number;
  readStartedAt: number | undefined;
  decideStartedAt: number | undefined;
  writeStartedAt: number | undefined;
  emitStartedAt: number | undefined;
  finishedAt: number;
  attempt: number;
  outcome: 'applied' | 'duplicate' | 'skipped' | 'dead-lettered' | 'parked';
  outOfOrder: boolean;
  errorCode: string | undefined;
  errorMessage: string | undefined;
  emitted: string[];
}

export interface EventPayloads {
  'stage.start': { stage: string };
  'stage.stop': { stage: string };
  'stage.rebalance': { stage: string; assigned: { topic: string; partitions: number[] }[] };
  'stage.batch.start': { stage: string; topic: string; partition: number; size: number; lag: number };
  'stage.batch.end': { stage: string; topic: string; partition: number; size: number; durationMs: number };
  'stage.batch.committed': {
    stage: string;
    topic: string;
    partition: number;
    offset: string;
    committedAt: number;
    /** Delivery positions (`topic:partition:offset`) whose effects this commit covers. */
    positions: string[];
  };
  'stage.event.handled': HandledEvent;
  'stage.event.retry': {
    stage: string;
    key: string;
    eventId: string;
    attempt: number;
    code: string;
    delayMs: number;
  };
  'stage.event.dead_lettered': {
    stage: string;
    key: string;
    eventId: string;
    code: string;
    attempts: number;
  };
  'stage.lanes.busy': { stage: string; partition: number; busy: number };
  /** Offsets [from, to) of a partition fell out of retention before the stage read them. */
  'stage.offsets.skipped': {
    stage: string;
    topic: string;
    partition: number;
    from: string;
    to: string;
    count: number;
  };
  'settings.applied': { key: string };
  'settings.rejected': { key: string; reason: string };
}

type Listener<N extends EventName> = (payload: EventPayloads[N]) => void;

export class Instrumentation {
  private readonly listeners = new Map<EventName, Set<Listener<EventName>>>();

  constructor(private readonly log?: Logger) {}

  on<N extends EventName>(name: N, listener: Listener<N>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as Listener<EventName>);
    return () => set!.delete(listener as Listener<EventName>);
  }

  emit<N extends EventName>(name: N, payload: EventPayloads[N]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const l of set) {
      try {
        (l as Listener<N>)(payload);
      } catch (err) {
        this.log?.error({ err, event: name }, 'instrumentation listener threw; continuing');
      }
    }
  }
}
