// Per-entity leases: two owners never hold the same key at once (also when racing), a busy key fails
// with the retriable LEASE_BUSY, an expired lease can be taken over, and release frees the key.
import { MongoClient } from 'mongodb';
import { KeyflowError } from '../../src/errors';
import { applyOnce } from '../../src/state/guard';
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

test('a takeover gets the next fencing token and a renewal keeps it; a write under an older token is refused', async () => {
  const { db } = await freshDb();
  let now = 1_000_000;
  const leases = new Leases(db, () => now);
  const counters = db.collection<{ _id: string; count?: number }>('fenced');

  const first = await leases.acquire('lead-1', 'instance-a:stage:t:0', 1_000);
  expect((await leases.acquire('lead-1', 'instance-a:stage:t:0', 1_000)).token).toBe(first.token);
  await applyOnce(counters, 'lead-1', 'e1', { $inc: { count: 1 } }, { fence: first.token });

  // The first holder stalls past its lease; another lane takes the entity over and writes.
  now += 5_000;
  const second = await leases.acquire('lead-1', 'instance-b:stage:t:0', 1_000);
  expect(second.token).toBe(first.token + 1);
  await applyOnce(counters, 'lead-1', 'e2', { $inc: { count: 1 } }, { fence: second.token });

  // The stale holder wakes up and writes under its old token: refused, nothing changes.
  await expect(
    applyOnce(counters, 'lead-1', 'e3', { $inc: { count: 10 } }, { fence: first.token }),
  ).rejects.toMatchObject({ code: 'LEASE_LOST', retriable: true });
  expect((await counters.findOne({ _id: 'lead-1' }))?.count).toBe(2);
});

test('a release keeps the token growing: the next holder gets a larger one, a stale holder’s fenced write is refused', async () => {
  // Behaviour: fencing tokens only grow per key, also across release. A holder that released (or
  // believes it still holds) the lease cannot overwrite what a later holder wrote under its token.
  const { db } = await freshDb();
  const leases = new Leases(db);
  const counters = db.collection<{ _id: string; count?: number }>('fenced');

  const first = await leases.acquire('lead-9', 'instance-a', 30_000);
  await applyOnce(counters, 'lead-9', 'e1', { $inc: { count: 1 } }, { fence: first.token });
  expect(await leases.release('lead-9', 'instance-a')).toBe(true);
  expect(await leases.release('lead-9', 'instance-a')).toBe(false);

  const second = await leases.acquire('lead-9', 'instance-b', 30_000);
  expect(second.token).toBeGreaterThan(first.token);
  await applyOnce(counters, 'lead-9', 'e2', { $inc: { count: 1 } }, { fence: second.token });
  await expect(
    applyOnce(counters, 'lead-9', 'e3', { $inc: { count: 10 } }, { fence: first.token }),
  ).rejects.toMatchObject({ code: 'LEASE_LOST', retriable: true });
  expect((await counters.findOne({ _id: 'lead-9' }))?.count).toBe(2);

  // The first owner taking the key again after a release is a new holder too.
  expect(await leases.release('lead-9', 'instance-b')).toBe(true);
  expect((await leases.acquire('lead-9', 'instance-a', 30_000)).token).toBeGreaterThan(second.token);
});
