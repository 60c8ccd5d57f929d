// Per-entity leases in `keyflow_leases`: when a handler touches one entity from several topics (several
// consumer groups), the lease makes those writes take turns. Switched on at runtime by `entityLocking`.
//
// Expiry compares wall clocks of the instances that take leases; keep ttlMs far above their clock skew.
import type { Collection, Db } from 'mongodb';
import { classify, KeyflowError } from '../errors';
import type { CollectionIndexes } from './mongo';
import { isDuplicateKey } from './conflicts';

export const LEASES_COLLECTION = 'keyflow_leases';

/** The expiry a released lease is left with: expired for every clock, so anyone may take it over. */
const RELEASED = 0;

/**
 * Leases are looked up by _id only; expired and released ones are taken over, never deleted (their
 * token must keep growing), so no index is needed. The collection keeps one small document per key
 * ever leased.
 */
export const LEASE_INDEXES: CollectionIndexes = { collection: LEASES_COLLECTION, indexes: [] };

export interface LeaseDoc {
  _id: string;
  owner: string;
  /** Epoch ms after which another owner may take the lease. */
  expiresAt: number;
  renewedAt: number;
  /**
   * Fencing token: grows by one each time the lease changes hands (a takeover after expiry or
   * release), kept while its holder renews. Never reset: the document outlives every holder.
   */
  token?: number;
}

export interface Lease {
  key: string;
  owner: string;
  expiresAt: number;
  /**
   * Writes made under the lease carry it (applyOnce's `fence`): a document written under a newer token
   * refuses an older one, so a holder that outlived its lease cannot overwrite the next holder's work.
   */
  token: number;
}

export class Leases {
  private readonly coll: Collection<LeaseDoc>;

  constructor(
    db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.coll = db.collection<LeaseDoc>(LEASES_COLLECTION);
  }

  /**
   * Takes or renews the lease on `key` for `ttlMs`. A renewal (the lease is ours and live) keeps its
   * token. A takeover matches only an expired lease, and the upsert creates a missing one, with the
   * next token; when another owner holds it, the upsert collides on _id and the call fails with
   * LEASE_BUSY (retriable).
   */
  async acquire(key: string, owner: string, ttlMs: number): Promise<Lease> {
    if (!(ttlMs > 0)) throw new KeyflowError('HANDLER_FAILED', `lease ttlMs must be positive, got ${ttlMs}`);
    const now = this.now();
    const expiresAt = now + ttlMs;
    let doc: LeaseDoc | null;
    try {
      doc = await this.coll.findOneAndUpdate(
        { _id: key, owner, expiresAt: { $gt: now } },
        { $set: { expiresAt, renewedAt: now } },
        { returnDocument: 'after' },
      );
      doc ??= await this.coll.findOneAndUpdate(
        { _id: key, expiresAt: { $lte: now } },
        { $set: { owner, expiresAt, renewedAt: now }, $inc: { token: 1 } },
        { upsert: true, returnDocument: 'after' },
      );
    } catch (err) {
      if (isDuplicateKey(err)) throw await this.busy(key, owner);
      throw classify(err);
    }
    if (!doc || doc.owner !== owner) throw await this.busy(key, owner);
    return { key, owner, expiresAt: doc.expiresAt, token: doc.token ?? 0 };
  }

  /**
   * Gives the lease up if `owner` still holds it; returns whether it did. The document stays, expired,
   * so the next holder's takeover increments its token: deleting it would start the next holder at
   * token 1 again, and a stale holder's fenced write (applyOnce `fence`) would be let through.
   */
  async release(key: string, owner: string): Promise<boolean> {
    try {
      const res = await this.coll.updateOne(
        { _id: key, owner, expiresAt: { $gt: RELEASED } },
        { $set: { expiresAt: RELEASED } },
      );
      return res.modifiedCount === 1;
    } catch (err) {
      throw classify(err);
    }
  }

  /** Runs `fn` holding the lease on `key`, releasing it afterwards whatever `fn` does. */
  async withLease<R>(key: string, owner: string, ttlMs: number, fn: () => Promise<R>): Promise<R> {
    await this.acquire(key, owner, ttlMs);
    let result: R;
    try {
      result = await fn();
    } catch (err) {
      // fn's error is the one worth reporting; an unreleased lease just expires after ttlMs.
      await this.release(key, owner).catch(() => false);
      throw err;
    }
    await this.release(key, owner);
    return result;
  }

  private async busy(key: string, owner: string): Promise<KeyflowError> {
    // The holder is only detail for the message; failing to read it must not hide the busy verdict.
    const holder = await this.coll.findOne({ _id: key }).catch(() => null);
    return new KeyflowError('LEASE_BUSY', `lease on ${key} is held by ${holder?.owner ?? 'another owner'}`, {
      details: { key, owner, holder: holder?.owner, expiresAt: holder?.expiresAt },
    });
  }
}
