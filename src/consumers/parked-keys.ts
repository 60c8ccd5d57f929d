// Parked keys: a key with an open dead letter holds its later events back, so per-key order survives
// a dead letter. The set lives in memory for the hot path and is (re)loaded from the dead-letter store
// whenever the member joins its group, since the previous owner of a partition may have parked keys.
// Until a key has been read from the store since the last assignment, and whenever it is parked, its
// first event of a batch asks the store again (one query per batch for all such keys): a letter the
// previous owner wrote is seen, and a letter discarded by an operator releases the key.

import type { Logger } from '../logger';
import type { LetterInput } from '../state/dead-letters';
import { retrying } from './retry';

/** The dead-letter store the runner needs (src/state/dead-letters.ts mongoLetterStore implements it). */
export interface LetterStore {
  record(letters: readonly LetterInput[]): Promise<void>;
  openKeys(stage: string): Promise<string[]>;
  /** Of `keys`, those with an open letter. */
  keysWithOpenLetters(stage: string, keys: readonly string[]): Promise<string[]>;
  hasOpenLetters(stage: string, key: string): Promise<boolean>;
  /**
   * For a re-driven record of letter `id`: go (no earlier open letter, but those in `ahead`: re-driven
   * earlier in the same batch), wait behind an earlier open letter, or done (already resolved).
   */
  redriveTurn(
    stage: string,
    key: string,
    id: string,
    ahead: ReadonlySet<string>,
  ): Promise<'go' | 'wait' | 'done'>;
  resolveLetter(id: string): Promise<void>;
}

/** Keys read from the store since the last assignment; past this many the memory starts over. */
const MAX_CHECKED = 100_000;
/** A failed load of the parked keys is tried again after this long, doubling up to the cap. */
const RELOAD_BASE_MS = 200;
const RELOAD_MAX_MS = 10_000;

export interface ParkedKeysOptions {
  stage: string;
  store: LetterStore;
  /** Runs a store call with the runner's infrastructure retries. */
  infra: <T>(fn: () => Promise<T>) => Promise<T>;
  log: Logger;
  keepGoing: () => boolean;
  sleep?: (ms: number) => Promise<unknown>;
}

export class ParkedKeys {
  private readonly keys = new Set<string>();
  private checked = new Set<string>();
  private loading: Promise<void> = Promise.resolve();
  private generation = 0;
  private readonly stage: string;
  private readonly store: LetterStore;
  private readonly infra: ParkedKeysOptions['infra'];

  constructor(private readonly opts: ParkedKeysOptions) {
    this.stage = opts.stage;
    this.store = opts.store;
    this.infra = opts.infra;
  }

  get current(): ReadonlySet<string> {
    return this.keys;
  }

  /**
   * Starts a reload; every check waits for the latest one. A load that fails even after the infra
   * retries is tried again with a backoff, never thrown at the deliveries (that would crash-loop).
   */
  reload(): void {
    const generation = ++this.generation;
    this.checked = new Set();
    const current = () => this.opts.keepGoing() && generation === this.generation;
    this.loading = retrying(() => this.infra(() => this.store.openKeys(this.stage)), {
      policy: { baseMs: RELOAD_BASE_MS, maxMs: RELOAD_MAX_MS, jitter: false },
      retriable: () => true,
      keepGoing: current,
      onRetry: (err, _attempt, delay) =>
        this.opts.log.warn({ err, delay }, 'loading parked keys failed; trying again'),
      sleep: this.opts.sleep,
    }).then(
      (keys) => {
        if (generation !== this.generation) return;
        this.keys.clear();
        for (const k of keys) this.keys.add(k);
      },
      // Given up only because the stage stops or a newer reload started: nothing to wait for.
      () => undefined,
    );
  }

  ready(): Promise<void> {
    return this.loading;
  }

  /**
   * Reads from the store, in one query, the park state of the batch's keys that are parked or not yet
   * read since the assignment. Call once per batch before the batch's first `mustWait`.
   */
  async refresh(keys: Iterable<string>): Promise<void> {
    const ask = [...new Set(keys)].filter((k) => this.keys.has(k) || !this.checked.has(k));
    if (ask.length === 0) return;
    const open = new Set(await this.infra(() => this.store.keysWithOpenLetters(this.stage, ask)));
    if (this.checked.size + ask.length > MAX_CHECKED) this.checked = new Set();
    for (const k of ask) {
      this.checked.add(k);
      if (open.has(k)) this.keys.add(k);
      else this.keys.delete(k);
    }
  }

  /**
   * Must this event wait behind a letter? A fresh event waits while its key is parked. A re-driven
   * one waits while an earlier letter of its key is still open (parked, or re-driven and not yet
   * applied), unless that letter is re-driven ahead of it in the same batch (`ahead`: the batch's
   * admitted re-drives of the key, which the rounds apply in order); a second copy of an already
   * applied re-drive is `done`.
   */
  async turn(
    key: string,
    redriveLetter: string | undefined,
    ahead: ReadonlySet<string> = new Set(),
  ): Promise<'go' | 'wait' | 'done'> {
    if (redriveLetter === undefined) return this.keys.has(key) ? 'wait' : 'go';
    return this.infra(() => this.store.redriveTurn(this.stage, key, redriveLetter, ahead));
  }

  park(key: string): void {
    this.keys.add(key);
  }

  /** A re-driven letter went through: resolve it, and release the key once no letter of it is open. */
  async resolved(letterId: string, key: string): Promise<void> {
    await this.infra(() => this.store.resolveLetter(letterId));
    const stillOpen = await this.infra(() => this.store.hasOpenLetters(this.stage, key));
    if (!stillOpen) this.keys.delete(key);
  }
}
