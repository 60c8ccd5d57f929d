// Ports the stage runner depends on, so it sees our own small interfaces rather than concrete clients.

export interface ValueDecoder {
  decode(topic: string, bytes: Buffer): Promise<{ value: unknown }>;
}

/** Per-entity lease, used when entity locking is switched on (src/state/leases.ts implements it). */
export interface EntityLeases {
  /** Takes or renews the lease; resolves to its fencing token. */
  acquire(key: string, owner: string, ttlMs: number): Promise<number>;
  release(key: string, owner: string): Promise<void>;
}

/** Options read on every event, so they can change without a restart (tenant-settings key `*`). */
export interface RuntimeSwitches {
  entityLocking: 'off' | 'lease';
}
