// Per-entity leases: two owners never hold the same key at once (also when racing), a busy key fails
// with the retriable LEASE_BUSY, an expired lease can be taken over, and release frees the key.
import { MongoClient } from 'mongodb';
import { KeyflowError } from '../../src/errors';
import { Leases } from '../../src/state/leases';
import { cleanupAll, env, freshDb, onCleanup } from '../helpers';

jest.setTimeout(60_000);
afterAll(cleanupAll);

async function busy(p: Promise<unknown>): Promise<KeyflowError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeyflowError);
  return err as KeyflowError;
}

test('a held lease is refused to another owner with LEASE_BUSY, renewed by its owner, freed by release', async () => {
  const { db } = await freshDb();
  const leases = new Leases(db);
  const lease = await leases.acquire('appt-1', 'worker-a', 30_000);
  expect(lease.owner).toBe('worker-a');

  const err = await busy(leases.acquire('appt-1', 'worker-b', 30_000));
  expect(err.code).toBe('LEASE_BUSY');
  expect(err.retriable).toBe(true);
  expect(err.message).toContain('worker-a');

  const renewed = await leases.acquire('appt-1', 'worker-a', 60_000);
  expect(renewed.expiresAt).toBeGreaterThanOrEqual(lease.expiresAt);

  expect(await leases.release('appt-1', 'worker-b')).toBe(false);
  expect(await leases.release('appt-1', 'worker-a')).toBe(true);
  expect((await leases.acquire('appt-1', 'worker-b', 30_000)).owner).toBe('worker-b');
});

test('an expired lease is taken over by another owner', async () => {
  const { db } = await freshDb();
  let now = 1_000_000;
  const leases = new Leases(db, () => now);
  await leases.acquire('appt-2', 'worker-a', 5_000);
  now += 4_999;
  expect((await busy(leases.acquire('appt-2', 'worker-b', 5_000))).code).toBe('LEASE_BUSY');
  now += 1;
  expect((await leases.acquire('appt-2', 'worker-b', 5_000)).owner).toBe('worker-b');
  // The former owner can no longer release what it lost.
  expect(await leases.release('appt-2', 'worker-a')).toBe(false);
});

test('owners racing from two clients never hold one key at the same time', async () => {
  const { db } = await freshDb();
  const other = new MongoClient(env('MONGO_URL'));
  await other.connect();
  onCleanup(() => other.close());
  const clients = [new Leases(db), new Leases(other.db(db.databaseName))];

  let holders = 0;
  let maxHolders = 0;
  let sections = 0;
  const worker = async (owner: string, leases: Leases) => {
    for (let i = 0; i < 15; i++) {
      try {
        await leases.withLease('hot', owner, 30_000, async () => {
          holders++;
          maxHolders = Math.max(maxHolders, holders);
          await new Promise((r) => setTimeout(r, 2));
          holders--;
          sections++;
        });
      } catch (err) {
        if (!(err instanceof KeyflowError && err.code === 'LEASE_BUSY')) throw err;
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, (_, i) => worker(`w${i}`, clients[i % 2]!)));
  expect(maxHolders).toBe(1);
  expect(sections).toBeGreaterThan(0);
});
