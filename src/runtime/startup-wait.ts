// Start-up against services that are not up yet. In a deployment the processor and its services
// start in any order, and a registry or broker restart can coincide with a pod start: a dependency
// that does not answer is waited for, with backoff and a log line per try, until one shared deadline
// (KEYFLOW_STARTUP_WAIT_MS). Anything that is not an outage — bad credentials, an incompatible
// schema, a bad setting — still stops start-up at once.
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyflowError } from '../errors';
import type { Logger } from '../logger';

/** Errors a dependency gives while it is down or still starting. */
const OUTAGE_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSMetadataNotLoaded',
  'MongoServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
]);

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
  const pause = opts.sleep ?? sleep;
  const baseMs = opts.baseMs ?? 500;
  const maxMs = opts.maxMs ?? 8000;
  const startedAt = now();
  const deadline = startedAt + opts.waitMs;
  return async function until<T>(what: string, step: () => Promise<T>): Promise<T> {
    let delay = baseMs;
    let tries = 0;
    for (;;) {
      try {
        const out = await step();
        if (tries > 0) {
          opts.log.info({ what, tries: tries + 1, waitedMs: now() - startedAt }, `${what} answered`);
        }
        return out;
      } catch (err) {
        const left = deadline - now();
        if (!isOutage(err)) throw err;
        if (left <= 0) {
          if (opts.waitMs === 0) throw err;
          const message = err instanceof Error ? err.message : String(err);
          throw new KeyflowError(
            'UNREACHABLE',
            `${message} (still down after waiting ${Math.round((now() - startedAt) / 1000)} s; KEYFLOW_STARTUP_WAIT_MS is ${opts.waitMs})`,
            { cause: err },
          );
        }
        tries++;
        const wait = Math.min(delay, left);
        opts.log.warn(
          { what, tries, retryInMs: wait, giveUpInMs: left, err },
          `waiting for ${what} at start-up`,
        );
        await pause(wait);
        delay = Math.min(delay * 2, maxMs);
      }
    }
  };
}
