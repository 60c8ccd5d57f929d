// Entity leases for a round of events, when entity locking is on: the lease manager takes a lease per
// key, renews them while the round runs, and releases them after (as BullMQ's lock manager does for
// its worker). The runner only asks it to `hold(keys, fn)`; how leases are kept is this file's alone.
import type { Logger } from '../logger';
import type { EntityLeases } from './types';

/** What a held round sees: the fencing token of each key it holds, and why the others were refused. */
export interface Held {
  token(key: string): number | undefined;
  /** The refusal of a key whose lease could not be taken (another holder, the store down). */
  refusal(key: string): unknown;
}

export interface LeaseManagerOptions {
  leases: EntityLeases;
  /** Names the lane: this instance, stage and partition. */
  owner: string;
  ttlMs: number;
  log: Logger;
  /** Renewal timers; default setInterval/clearInterval. */
  every?: (fn: () => void, ms: number) => () => void;
}

const defaultEvery = (fn: () => void, ms: number) => {
  const t = setInterval(fn, ms);
  return () => clearInterval(t);
};

export class LeaseManager {
  constructor(private readonly opts: LeaseManagerOptions) {}

  /**
   * Takes the leases of `keys`, runs `fn` while renewing them every third of the TTL, then releases
   * them. A renewal that fails leaves the lease to expire, and the fence then refuses this holder's late
   * writes; a release that fails lets the lease expire by itself.
   */
  async hold<T>(keys: Iterable<string>, fn: (held: Held) => Promise<T>): Promise<T> {
    const { leases, owner, ttlMs, log } = this.opts;
    const tokens = new Map<string, number>();
    const refused = new Map<string, unknown>();
    await Promise.all(
      [...new Set(keys)].map((k) =>
        leases.acquire(k, owner, ttlMs).then(
          (token) => void tokens.set(k, token),
          (err: unknown) => void refused.set(k, err),
        ),
      ),
    );
    const stop = (this.opts.every ?? defaultEvery)(
      () => {
        for (const k of tokens.keys()) {
          leases.acquire(k, owner, ttlMs).catch((err) => log.warn({ err, key: k }, 'lease renewal failed'));
        }
      },
      Math.max(1, Math.floor(ttlMs / 3)),
    );
    try {
      return await fn({ token: (k) => tokens.get(k), refusal: (k) => refused.get(k) });
    } finally {
      stop();
      await Promise.all(
        [...tokens.keys()].map((k) =>
          leases
            .release(k, owner)
            .catch((err) => log.warn({ err, key: k }, 'lease release failed; it expires by itself')),
        ),
      );
    }
  }
}
