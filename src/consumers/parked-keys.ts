// Parked keys: a key with an open dead letter holds its later events back, so per-key order survives
// a dead letter. The set lives in memory for the hot path and is (re)loaded from the dead-letter store
// whenever the member joins its group, since the previous owner of a partition may have parked keys.

import type { LetterInput } from '../state/dead-letters';

/** The dead-letter store the runner needs (src/state/dead-letters.ts mongoLetterStore implements it). */
export interface LetterStore {
  record(letters: readonly LetterInput[]): Promise<void>;
  openKeys(stage: string): Promise<string[]>;
  hasOpenLetters(stage: string, key: string): Promise<boolean>;
  hasParkedLetters(stage: string, key: string): Promise<boolean>;
  resolveLetter(id: string): Promise<void>;
}

export class ParkedKeys {
  private readonly keys = new Set<string>();
  private loading: Promise<void> = Promise.resolve();

  constructor(
    private readonly stage: string,
    private readonly store: LetterStore,
    /** Runs a store call with the runner's infrastructure retries. */
    private readonly infra: <T>(fn: () => Promise<T>) => Promise<T>,
  ) {}

  get current(): ReadonlySet<string> {
    return this.keys;
  }

  /** Starts a reload; every check waits for the latest one. */
  reload(): void {
    this.loading = this.infra(() => this.store.openKeys(this.stage)).then((keys) => {
      this.keys.clear();
      for (const k of keys) this.keys.add(k);
    });
  }

  ready(): Promise<void> {
    return this.loading;
  }

  /**
   * Must this event wait behind a letter? A fresh event waits while its key is parked. A re-driven
   * one waits while any letter of its key is still parked (say an earlier re-drive failed again).
   */
  async mustWait(key: string, redriveLetter: string | undefined): Promise<boolean> {
    if (redriveLetter === undefined) return this.keys.has(key);
    return this.infra(() => this.store.hasParkedLetters(this.stage, key));
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
