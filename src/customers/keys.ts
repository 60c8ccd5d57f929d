// Customers and their API keys. A key is 32 random bytes shown once at creation; only its SHA-256 is
// stored (a slow password hash buys nothing for a random key of that size), and requests are matched by it.
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from 'mongodb';
import type { CollectionIndexes } from '../state/mongo';

export const CUSTOMERS = 'Customers';
export const API_KEYS = 'CustomerApiKeys';

const KEY_PREFIX = 'kf_';
/** What a presented key must look like before we spend a lookup on it. */
export const API_KEY_PATTERN = /^kf_[A-Za-z0-9_-]{43}$/;

interface CustomerDoc {
  _id: string;
  created: Date;
}

interface ApiKeyDoc {
  /** SHA-256 of the key, hex. */
  _id: string;
  customerId: string;
  created: Date;
}

export const CUSTOMER_INDEXES: CollectionIndexes[] = [
  { collection: API_KEYS, indexes: [{ key: { customerId: 1 }, name: 'customer' }] },
];

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Creates the customer if new and a fresh key for it; the key itself is returned once, never stored. */
export async function createCustomerKey(
  db: Db,
  customerId: string,
  now = new Date(),
): Promise<{ key: string; newCustomer: boolean }> {
  const res = await db
    .collection<CustomerDoc>(CUSTOMERS)
    .updateOne({ _id: customerId }, { $setOnInsert: { created: now } }, { upsert: true });
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  await db.collection<ApiKeyDoc>(API_KEYS).insertOne({ _id: hashKey(key), customerId, created: now });
  return { key, newCustomer: res.upsertedCount === 1 };
}

/** The customer a presented key belongs to, or undefined for an unknown or malformed key. */
export async function customerOfKey(db: Db, key: string): Promise<string | undefined> {
  if (!API_KEY_PATTERN.test(key)) return undefined;
  const doc = await db.collection<ApiKeyDoc>(API_KEYS).findOne({ _id: hashKey(key) });
  return doc?.customerId;
}
