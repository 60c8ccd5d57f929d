// Failure strategies: what becomes of an event whose handling failed, chosen per stage from its
// declaration rather than by flags inside the loop. Retry in place while the budget lasts; then the
// event is dead-lettered, and its key is either parked behind it or let go on (skip).
import { classify, type KeyflowError } from '../errors';
import type { DeadLetterPolicy } from '../topology/types';
import { decideRetry, type RetryPolicy } from './retry';

export type FailureAction =
  | { action: 'retry'; delayMs: number }
  /** `park`: the key's later events wait behind the letter; otherwise they go on. */
  | { action: 'dead-letter'; park: boolean };

export interface FailureStrategy {
  readonly name: DeadLetterPolicy;
  onFailure(err: KeyflowError, attempt: number): FailureAction;
}

class RetryThen implements FailureStrategy {
  constructor(
    readonly name: DeadLetterPolicy,
    private readonly retry: RetryPolicy,
  ) {}

  onFailure(err: KeyflowError, attempt: number): FailureAction {
    const d = decideRetry(this.retry, err, attempt);
    if (d.action === 'retry') return d;
    return { action: 'dead-letter', park: this.name === 'park-key' };
  }
}

export function strategyFor(
  spec: { onDeadLetter?: DeadLetterPolicy; maxAttempts?: number },
  retry: RetryPolicy,
): FailureStrategy {
  return new RetryThen(spec.onDeadLetter ?? 'park-key', {
    ...retry,
    maxAttempts: spec.maxAttempts ?? retry.maxAttempts,
  });
}

/**
 * Runs a call against our own infrastructure (store, broker, registry), retrying transient failures
 * while `keepGoing()` holds and, when `budgetMs` is set, until that long after the first failure. A
 * non-retriable failure, one once the stage stops, or one past the budget is thrown.
 */
export async function withInfraRetry<T>(
  fn: () => Promise<T>,
  keepGoing: () => boolean,
  retry: RetryPolicy & { budgetMs?: number },
  onRetry: (err: KeyflowError, attempt: number, delayMs: number) => void,
  sleep: (ms: number) => Promise<void>,
  now: () => number = Date.now,
): Promise<T> {
  let firstFailure: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const e = classify(err);
      if (!e.retriable || !keepGoing()) throw e;
      firstFailure ??= now();
      const d = decideRetry(retry, e, attempt);
      let delay = d.action === 'retry' ? d.delayMs : retry.maxMs;
      if (retry.budgetMs !== undefined) {
        const left = firstFailure + retry.budgetMs - now();
        if (left <= 0) throw e;
        delay = Math.min(delay, left);
      }
      onRetry(e, attempt, delay);
      await sleep(delay);
    }
  }
}
