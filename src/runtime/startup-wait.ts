// Start-up against services that are not up yet. In a deployment the processor and its services
// start in any order, and a registry or broker restart can coincide with a pod start: a dependency
// that does not answer is waited for, with backoff and a log line per try, until one shared deadline
// (KEYFLOW_STARTUP_WAIT_MS). Anything that is not an outage — bad credentials, an incompatible
// schema, a bad setting — still stops start-up at once.
import { retrying } from '../consumers/retry';
import { KeyflowError } from '../errors';
import type { Logger } from '../logger';

/**
 * Errors a dependency gives while it is down or still starting. The Kafka client's arrive as
 * KeyflowErrors already (UNREACHABLE, or retriable), mapped by its adapter.
 */
const OUTAGE_NAMES = new Set(['MongoServerSelectionError', 'MongoNetworkError', 'MongoNetworkTimeoutError']);

export function isOutage(err: unknown): boolean {
  if (err instanceof KeyflowError) return err.code === 'UNREACHABLE' || err.retriable;
  const e = err as { name?: unknown; retriable?: unknown } | undefined;
  return (typeof e?.name === 'string' && OUTAGE_NAMES.has(e.name)) || e?.retriable === true;
}

export interface StartupWaitOptions {
  /** The whole start-up's budget; 0 makes the first outage fatal. */
  waitMs: number;
  log: Pick<Logger, 'warn' | 'info'>;
  baseMs?: number;
  maxMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<unknown>;
}

/** Returns `until(what, step)`: runs `step`, trying it again through outages until the deadline. */
export function startupWaiter(opts: StartupWaitOptions) {
  const now = opts.now ?? Date.now;
  const startedAt = now();
  const deadline = startedAt + opts.waitMs;
  const policy = { baseMs: opts.baseMs ?? 500, maxMs: opts.maxMs ?? 8000, jitter: false };
  return async function until<T>(what: string, step: () => Promise<T>): Promise<T> {
    let tries = 0;
    const out = await retrying(step, {
      policy,
      deadline,
      retriable: isOutage,
      now,
      sleep: opts.sleep,
      onRetry: (err, attempt, wait) => {
        tries = attempt;
        const giveUpInMs = deadline - now();
        opts.log.warn({ what, tries, retryInMs: wait, giveUpInMs, err }, `waiting for ${what} at start-up`);
      },
      giveUp: (err) => {
        if (!isOutage(err) || opts.waitMs === 0) return err;
        const message = err instanceof Error ? err.message : String(err);
        const waited = Math.round((now() - startedAt) / 1000);
        return new KeyflowError(
          'UNREACHABLE',
          `${message} (still down after waiting ${waited} s; KEYFLOW_STARTUP_WAIT_MS is ${opts.waitMs})`,
          { cause: err },
        );
      },
    });
    if (tries > 0) opts.log.info({ what, tries: tries + 1, waitedMs: now() - startedAt }, `${what} answered`);
    return out;
  };
}
