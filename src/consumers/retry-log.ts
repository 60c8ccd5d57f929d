// The warning a stage logs while its infrastructure calls are retried. During an outage every event of
// every delivery retries on its own (a registry down for a minute was 700 MB of identical lines), so
// one line per cause says it started, and then at most one per interval says how many retries of that
// cause were not logged since. The retry metric and alerts still see every retry.
import { classify } from '../errors';
import type { Logger } from '../logger';

export interface RetryLogOptions {
  /** At most one line per cause in this window after the first (default 10 s). */
  intervalMs?: number;
  now?: () => number;
}

interface Cause {
  loggedAt: number;
  unlogged: number;
}

/** What makes two failures the same cause: the code and the message without numbers that vary. */
function causeOf(err: unknown): string {
  const e = classify(err);
  return `${e.code}:${e.message.replace(/\d+/g, '#')}`;
}

export class RetryLog {
  private readonly causes = new Map<string, Cause>();
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly log: Logger,
    opts: RetryLogOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Told before each wait of a retried call. */
  retrying(err: unknown, attempt: number, delay: number): void {
    const key = causeOf(err);
    const now = this.now();
    const cause = this.causes.get(key);
    if (cause && now - cause.loggedAt < this.intervalMs) {
      cause.unlogged++;
      return;
    }
    const unlogged = cause?.unlogged ?? 0;
    this.causes.set(key, { loggedAt: now, unlogged: 0 });
    // Causes seen long ago are forgotten, so the map stays as small as the set of current causes.
    if (this.causes.size > 100) {
      for (const [k, c] of this.causes) if (now - c.loggedAt >= this.intervalMs) this.causes.delete(k);
    }
    this.log.warn(
      { err, attempt, delay, ...(unlogged > 0 ? { unloggedRetries: unlogged } : {}) },
      unlogged > 0
        ? `infrastructure call failed; retrying (${unlogged} more retries of this cause since the last line)`
        : 'infrastructure call failed; retrying',
    );
  }
}
