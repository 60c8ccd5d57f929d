// Retry policy and the one retry-with-backoff loop of the engine: exponential backoff with jitter,
// bounded by attempts, a time budget, a deadline or the caller's "keep going". Every loop that tries
// a call again (infrastructure calls in a batch, the parked-key reload, the settings follower,
// start-up waits, replay, the batch fold) goes through `retrying`.
import { classify, type KeyflowError } from '../errors';

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
  /** Default true: half of each delay is random. False doubles exactly (start-up waits log their plan). */
  jitter?: boolean;
}

/** Delay before attempt `attempt + 1` after `attempt` failed (attempt counts from 1). */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, Math.min(attempt, 30) - 1));
  if (policy.jitter === false) return ceiling;
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
  if (INFRASTRUCTURE.has(err.code)) return { action: 'retry', delayMs: backoffMs(policy, attempt) };
  if (attempt >= policy.maxAttempts) return { action: 'dead-letter' };
  return { action: 'retry', delayMs: backoffMs(policy, attempt) };
}

export interface RetryingOptions {
  /** Backoff between tries; `maxAttempts` is ignored unless `boundedAttempts` is set. */
  policy: Omit<RetryPolicy, 'maxAttempts'> & { maxAttempts?: number };
  /** Give up after `policy.maxAttempts` tries (default: no bound on tries). */
  boundedAttempts?: boolean;
  /** Give up once this long has passed since the first failure; the last wait is cut to fit. */
  budgetMs?: number;
  /** Give up at this time (epoch ms); the last wait is cut to fit. */
  deadline?: number;
  /** Tried again only while this holds (default: always). */
  keepGoing?: () => boolean;
  /** Which failures are worth another try (default: the classified error's `retriable`). */
  retriable?: (err: unknown) => boolean;
  /** Told before each wait; a log line, usually. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Turns the last failure into what is thrown (default: as it came). */
  giveUp?: (err: unknown, attempts: number) => unknown;
  sleep?: (ms: number) => Promise<unknown>;
  now?: () => number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `fn` until it succeeds or the options say to give up; then the last failure is thrown. */
export async function retrying<T>(fn: (attempt: number) => Promise<T>, opts: RetryingOptions): Promise<T> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? defaultSleep;
  const retriable = opts.retriable ?? ((err: unknown) => classify(err).retriable);
  const policy = { maxAttempts: Infinity, ...opts.policy };
  let firstFailure: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const giveUp = () => (opts.giveUp ? opts.giveUp(err, attempt) : err);
      if (!retriable(err) || !(opts.keepGoing?.() ?? true)) throw giveUp();
      if (opts.boundedAttempts && attempt >= policy.maxAttempts) throw giveUp();
      firstFailure ??= now();
      let delay = backoffMs(policy, attempt);
      const ends = [
        opts.budgetMs !== undefined ? firstFailure + opts.budgetMs : Infinity,
        opts.deadline ?? Infinity,
      ];
      const left = Math.min(...ends) - now();
      if (left <= 0) throw giveUp();
      delay = Math.min(delay, left);
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}

/** Waits `ms`, or less once `keepGoing()` turns false (checked every 100 ms). */
export async function pause(ms: number, keepGoing: () => boolean): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until && keepGoing()) await defaultSleep(Math.min(100, until - Date.now()));
}
