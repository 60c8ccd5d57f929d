// The settlement of one delivery: every event ends here once — done (its records built and reported),
// dead-lettered (its letter and dead-letter records), or passed — into the delivery's commit window,
// whose flush sends the records and commits the completed prefix in one step (one Kafka transaction
// when the delivery carries `transact`). A re-driven letter is resolved only once its event's records
// are sent.
import { classify } from '../errors';
import { EVENTS, type Instrumentation } from '../instrumentation';
import type { Logger } from '../logger';
import type { KeyedProducer } from '../producers/producer';
import type { WireRecord } from '../producers/types';
import type { OutRecord, StageEvent } from '../topology/types';
import { CommitWindow, type FlushLimits, type Settled } from './commit-window';
import type { DeadLetters, Dying } from './dead-letter';
import type { InFlight, Runnable } from './envelope';
import type { Delivery } from './group';
import { reportHandled, type EventOutcome } from './outcome';

export type Done = { p: Runnable; o: EventOutcome & { kind: 'done' } };

export interface SettlementOptions {
  stage: string;
  delivery: Delivery;
  letters: DeadLetters;
  producer: Pick<KeyedProducer, 'prepare' | 'sendNow'>;
  instrumentation: Instrumentation;
  log: Logger;
  limits: FlushLimits;
  /** Runs a call with the runner's infrastructure retries, while `keepGoing` holds. */
  infra: <T>(fn: () => Promise<T>, keepGoing: () => boolean) => Promise<T>;
  /** The stage still runs (sends are retried meanwhile). */
  running: () => boolean;
}

export class Settlement {
  private readonly window: CommitWindow;
  private readonly where: { stage: string; topic: string; partition: number };

  constructor(private readonly opts: SettlementOptions) {
    const { delivery: d, instrumentation, log, running } = opts;
    const where = (this.where = { stage: opts.stage, topic: d.topic, partition: d.partition });
    this.window = new CommitWindow(
      d.messages.map((m) => m.offset),
      {
        send: (records) => opts.infra(() => opts.producer.sendNow(records), running),
        commit: (next) => d.commit(next),
        // An aborted transaction is retried whole like a failed send; a fenced one is not retriable.
        ...(d.transact
          ? { transact: (records, next) => opts.infra(() => d.transact!(records, next), running) }
          : {}),
        end: d.end,
        committed: (last, offsets) =>
          instrumentation.emit(EVENTS.BATCH_COMMITTED, {
            ...where,
            offset: last,
            committedAt: Date.now(),
            positions: offsets.map((o) => `${d.topic}:${d.partition}:${o}`),
          }),
        lost: (err) =>
          log.warn({ err, partition: d.partition }, 'commit refused; partition likely reassigned'),
        refused: (item, err) => opts.letters.refused(d, item, err),
        afterCommitFailed: (err) =>
          log.warn(
            { err, partition: d.partition },
            'a re-driven letter stayed open after its transaction committed; `dlq replay` sends it again once stale, and it then resolves without a second change',
          ),
      },
      opts.limits,
    );
  }

  /** True once a commit was refused: the delivery takes no further event. */
  get lost(): boolean {
    return this.window.lost;
  }

  /** Nothing for the handler to do (a tombstone, a re-drive for another stage or already applied). */
  async pass(item: InFlight, report: boolean): Promise<void> {
    if (report) {
      reportHandled(this.opts.instrumentation, { ...this.where, item, outcome: 'skipped', attempt: 1 });
    }
    await this.window.settle({ offset: item.raw.offset, records: [] });
  }

  /** Writes the letters of `dying` and settles each with its dead-letter records. */
  async dead(dying: readonly Dying[]): Promise<void> {
    for (const s of await this.opts.letters.write(this.opts.delivery, dying)) await this.window.settle(s);
  }

  /**
   * Builds each done event's records, reports it, and settles it. An event whose records cannot be
   * built (no key, fails its topic's schema) is dead-lettered: its state is written, its emission goes
   * to the dead-letter topic with the reason.
   */
  async done(done: readonly Done[], keepGoing: () => boolean): Promise<void> {
    const dying: Dying[] = [];
    const built = await Promise.all(
      done.map(async ({ p, o }) => {
        const emitStartedAt = Date.now();
        try {
          const records = await this.opts.infra(() => this.records(p.event, o.emit), keepGoing);
          return { p, o, records, emitStartedAt };
        } catch (err) {
          const error = classify(err);
          if (error.retriable) throw err;
          dying.push(this.opts.letters.doom(p, error, p.event.attempt, o.t));
          return undefined;
        }
      }),
    );
    for (const x of built) {
      if (!x) continue;
      const { p, o, records } = x;
      reportHandled(this.opts.instrumentation, {
        ...this.where,
        item: p,
        outcome: o.outcome,
        attempt: p.event.attempt,
        t: { ...o.t, emitStartedAt: x.emitStartedAt },
        outOfOrder: o.outOfOrder,
        emitted: records.map((r) => r.eventId),
      });
      const afterSend = this.opts.letters.resolveAfterSend(p);
      await this.window.settle({ offset: p.raw.offset, records, item: p, afterSend });
    }
    await this.dead(dying);
  }

  /** Sends what is settled and commits the completed prefix: the delivery's one settling step. */
  flush(): Promise<void> {
    return this.window.flush();
  }

  private records(e: StageEvent, emit: OutRecord[]): Promise<WireRecord[]> {
    const { eventId, traceId, attempt, tenantId, occurredAt } = e;
    const cause = { eventId, stage: this.opts.stage, traceId, attempt, tenantId };
    return Promise.all(
      emit.map((r, i) =>
        this.opts.producer.prepare(
          { topic: r.topic, key: r.key, value: r.value, occurredAt: r.occurredAt ?? occurredAt },
          cause,
          i,
        ),
      ),
    );
  }
}

export type { Settled };
