// Failure strategies: what becomes of an event whose handling failed, chosen once per stage from its
// declaration (as Karafka's strategy selector) rather than by flags inside the loop. Each retries in
// place while the budget lasts; then the event is dead-lettered, and the strategy decides what its key
// does — parked behind the letter (`park-key`), or let go on (`skip`) — and so the letter's status.
import type { KeyflowError } from '../errors';
import type { DeadLetterPolicy } from '../topology/types';
import type { ParkedKeys } from './parked-keys';
import { decideRetry, type RetryPolicy } from './retry';

export type FailureAction = { action: 'retry'; delayMs: number } | { action: 'dead-letter' };

/** `parked`: the key's later events wait behind the letter; `dead`: they go on. */
export type LetterStatus = 'parked' | 'dead';

export interface FailureStrategy {
  /** After a handler failure: retry in place after `delayMs`, or dead-letter the event. */
  onFailure(err: KeyflowError, attempt: number): FailureAction;
  /** An event of `key` is being dead-lettered: parks the key or not; returns the letter's status. */
  deadLettered(key: string | null): LetterStatus;
  /** The member (re)joined: another instance may have parked keys of partitions we now own. */
  onJoin(): void;
  /** Before a delivery is admitted: the store's word on its fresh keys (a previous owner's letter, a discard). */
  beforeAdmit(keys: string[]): Promise<void>;
}

abstract class RetryInPlace {
  constructor(private readonly retry: RetryPolicy) {}

  onFailure(err: KeyflowError, attempt: number): FailureAction {
    return decideRetry(this.retry, err, attempt);
  }
}

/** A dead letter parks its key: the key's later events wait until the letter is re-driven or discarded. */
class ParkKey extends RetryInPlace implements FailureStrategy {
  constructor(
    retry: RetryPolicy,
    private readonly parked: ParkedKeys,
  ) {
    super(retry);
  }

  deadLettered(key: string | null): LetterStatus {
    if (key === null) return 'dead';
    this.parked.park(key);
    return 'parked';
  }

  onJoin(): void {
    this.parked.reload();
  }

  beforeAdmit(keys: string[]): Promise<void> {
    return this.parked.refresh(keys);
  }
}

/** A dead letter is skipped: the key's later events go on without it. */
class Skip extends RetryInPlace implements FailureStrategy {
  deadLettered(): LetterStatus {
    return 'dead';
  }

  onJoin(): void {}

  async beforeAdmit(): Promise<void> {}
}

export function strategyFor(
  spec: { onDeadLetter?: DeadLetterPolicy; maxAttempts?: number },
  retry: RetryPolicy,
  parked: ParkedKeys,
): FailureStrategy {
  const policy = { ...retry, maxAttempts: spec.maxAttempts ?? retry.maxAttempts };
  const strategies: Record<DeadLetterPolicy, () => FailureStrategy> = {
    'park-key': () => new ParkKey(policy, parked),
    skip: () => new Skip(policy),
  };
  return strategies[spec.onDeadLetter ?? 'park-key']();
}
