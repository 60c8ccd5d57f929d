// Retry policy: exponential backoff with full jitter, bounded; which failures retry and how often.
import type { KeyflowError } from '../errors';

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

/** Delay before attempt `attempt + 1` after `attempt` failed (attempt counts from 1). */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  // Half fixed, half jitter: spreads retries of many keys without ever retrying immediately.
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Infrastructure failures (the store or a broker unreachable) are retried for as long as the stage
 * runs: dead-lettering every event during an outage would park every key. The partition waits,
 * lag grows and alerts fire; nothing is lost. A busy entity lease is held only while another
 * instance works on that entity, so it too waits rather than dead-letters. Event failures (a handler's
 * own retriable errors) use the attempt budget.
 */
const INFRASTRUCTURE = new Set(['STORE_TRANSIENT', 'UNREACHABLE', 'PRODUCE_FAILED', 'LEASE_BUSY']);

export type RetryDecision = { action: 'retry'; delayMs: number } | { action: 'dead-letter' };

export function decideRetry(policy: RetryPolicy, err: KeyflowError, attempt: number): RetryDecision {
  if (!err.retriable) return { action: 'dead-letter' };
  if (INFRASTRUCTURE.has(err.code))
    return { action: 'retry', delayMs: backoffMs(policy, Math.min(attempt, 30)) };
  if (attempt >= policy.maxAttempts) return { action: 'dead-letter' };
  return { action: 'retry', delayMs: backoffMs(policy, attempt) };
}
