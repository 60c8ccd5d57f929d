// The dead-letter module: the one place that turns a failed event into its letter (in the store) and
// its dead-letter records (the `<stage>.dlq` record, and the stage's own close-out records). The
// failure strategy says what the key does and so the letter's status; this module writes what it says.
// A re-driven letter is resolved here too, and only once its event's records are sent (before the
// offset is committed): resolved earlier, a lost flush left the redelivery skipping the event for good.
import { KeyflowError } from '../errors';
import { EVENTS, type Instrumentation } from '../instrumentation';
import type { Logger } from '../logger';
import { HEADERS } from '../producers/headers';
import type { KeyedProducer } from '../producers/producer';
import type { WireRecord } from '../producers/types';
import * as letters from '../state/dead-letters';
import type { StageSpec } from '../topology/types';
import type { Settled } from './commit-window';
import type { InFlight, Runnable } from './envelope';
import type { FailureStrategy, LetterStatus } from './failure';
import { reportHandled, type StepTimings } from './outcome';
import type { LetterStore, ParkedKeys } from './parked-keys';

/** An event on its way to a dead letter: why, after how many attempts, and its letter's status. */
export interface Dying {
  item: InFlight;
  error: KeyflowError;
  attempts: number;
  status: LetterStatus;
  t?: StepTimings;
}

/** Where the dead events were read from. */
export interface Origin {
  topic: string;
  partition: number;
}

export interface DeadLetterOptions {
  spec: Pick<StageSpec, 'name' | 'onDeadLettered'>;
  store: LetterStore;
  strategy: FailureStrategy;
  parked: ParkedKeys;
  producer: Pick<KeyedProducer, 'prepare'>;
  instrumentation: Instrumentation;
  log: Logger;
  /** Runs a store call with the runner's infrastructure retries. */
  infra: <T>(fn: () => Promise<T>) => Promise<T>;
  /** The dead-letter topics' max.message.bytes: a larger record is sent header-only. */
  dlqMaxMessageBytes: number;
}

export class DeadLetters {
  private readonly stage: string;

  constructor(private readonly opts: DeadLetterOptions) {
    this.stage = opts.spec.name;
  }

  /** The event is dead-lettered: the strategy parks its key or not, which sets the letter's status. */
  doom(item: InFlight, error: KeyflowError, attempts: number, t?: StepTimings): Dying {
    return { item, error, attempts, t, status: this.opts.strategy.deadLettered(item.key) };
  }

  /** An event that waits behind an earlier open letter of its key gets a letter of its own. */
  waiting(item: Runnable): Dying {
    const error = new KeyflowError('KEY_PARKED', `key ${item.key} has an earlier event in ${this.stage}.dlq`);
    return this.doom(item, error, 0);
  }

  /** Writes the letters (one store call), reports each event, and returns what to settle for each. */
  async write(origin: Origin, dying: readonly Dying[]): Promise<Settled[]> {
    if (dying.length === 0) return [];
    const inputs = dying.map((x) => this.letter(origin, x));
    await this.opts.infra(() => this.opts.store.record(inputs));
    return Promise.all(
      dying.map(async (x, i) => {
        this.announce(origin, x);
        const records = [
          letters.dlqRecord(inputs[i]!, this.opts.dlqMaxMessageBytes),
          ...(await this.closeOut(x)),
        ];
        return { offset: x.item.raw.offset, records };
      }),
    );
  }

  /** The broker refused an event's own records: its letter and dead-letter records replace them. */
  async refused(origin: Origin, item: InFlight, error: KeyflowError): Promise<WireRecord[]> {
    const [settled] = await this.write(origin, [this.doom(item, error, item.event?.attempt ?? 1)]);
    return [...settled!.records];
  }

  /**
   * What follows the sending of a re-driven event's records: its letter is resolved, and its key
   * released once no letter of it is open. A failure is thrown: the offset then stays uncommitted, and
   * the redelivery applies the event again (its letter still open) and resolves it.
   */
  resolveAfterSend(item: Runnable): (() => Promise<void>) | undefined {
    const id = item.redriveLetter;
    if (id === undefined) return undefined;
    return () => this.opts.parked.resolved(id, item.key);
  }

  private letter(origin: Origin, x: Dying): letters.LetterInput {
    const { item, error } = x;
    return {
      id: item.redriveLetter ?? letters.letterId(this.stage, origin.topic, origin.partition, item.raw.offset),
      stage: this.stage,
      key: item.key,
      eventId: item.eventId,
      topic: origin.topic,
      partition: origin.partition,
      offset: item.raw.offset,
      value: item.raw.value,
      headers: stripDlqHeaders(item.raw.headers),
      code: error.code,
      message: error.message,
      attempts: x.attempts,
      firstFailedAt: item.event?.consumedAt ?? Date.now(),
      status: x.status,
      // A re-driven letter that only waits again keeps the reason it first failed for.
      keepReason: item.redriveLetter !== undefined && error.code === 'KEY_PARKED',
    };
  }

  private announce(origin: Origin, x: Dying): void {
    const { item, error, attempts } = x;
    this.opts.instrumentation.emit(EVENTS.EVENT_DEAD_LETTERED, {
      stage: this.stage,
      key: item.key ?? '',
      eventId: item.eventId,
      code: error.code,
      attempts,
    });
    if (error.code !== 'KEY_PARKED') {
      this.opts.log.warn(
        { key: item.key, eventId: item.eventId, code: error.code, attempts, err: error.message },
        'event dead-lettered',
      );
    }
    reportHandled(this.opts.instrumentation, {
      stage: this.stage,
      ...origin,
      item,
      outcome: error.code === 'KEY_PARKED' ? 'parked' : 'dead-lettered',
      attempt: attempts,
      t: x.t,
      error,
    });
  }

  /** The stage's own records for a dead-lettered event, derived under `<stage>.dlq` so they never collide. */
  private async closeOut(x: Dying): Promise<WireRecord[]> {
    const event = x.item.event;
    const onDead = this.opts.spec.onDeadLettered;
    if (!onDead || !event || x.error.code === 'KEY_PARKED') return [];
    const { eventId, traceId, attempt, tenantId, occurredAt } = event;
    const cause = { eventId, stage: `${this.stage}.dlq`, traceId, attempt, tenantId };
    const out = onDead(event, { code: x.error.code, message: x.error.message });
    return Promise.all(
      out.map((r, i) =>
        this.opts.producer.prepare(
          { topic: r.topic, key: r.key, value: r.value, occurredAt: r.occurredAt ?? occurredAt },
          cause,
          i,
        ),
      ),
    );
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
