// `keyflow customers create <customerId>` prints a new API key as its last line and stores only the
// key's hash; the key then authenticates as that customer. Bad ids and usage are refused.
import { customersCommand } from '../../src/cli/customers';
import { API_KEYS, API_KEY_PATTERN, customerOfKey, hashKey } from '../../src/customers/keys';
import { cleanupAll, freshDb } from '../helpers';

afterAll(cleanupAll);

async function run(args: string[], mongoDb: string): Promise<{ code: number; out: string }> {
  const saved = process.env.MONGO_DB;
  process.env.MONGO_DB = mongoDb;
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  try {
    return { code: await customersCommand.run(args), out };
  } finally {
    spy.mockRestore();
    process.env.MONGO_DB = saved;
  }
}

test('create prints a working key as the last line and stores only its hash', async () => {
  const { db } = await freshDb('kfcust');
  const first = await run(['create', 'acme'], db.databaseName);
  expect(first.code).toBe(0);
  const key = first.out.trimEnd().split('\n').pop()!;
  expect(key).toMatch(API_KEY_PATTERN);
  expect(first.out).toMatch(/created customer acme/);
  expect(await customerOfKey(db, key)).toBe('acme');
  const stored = await db.collection(API_KEYS).find().toArray();
  expect(stored.map((d) => d._id)).toEqual([hashKey(key)]);
  expect(JSON.stringify(stored)).not.toContain(key);

  const second = await run(['create', 'acme'], db.databaseName);
  const other = second.out.trimEnd().split('\n').pop()!;
  expect(second.out).toMatch(/added a key to customer acme/);
  expect(other).not.toBe(key);
  expect(await customerOfKey(db, other)).toBe('acme');
  expect(await customerOfKey(db, key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A'))).toBeUndefined();
});

test.each([
  [['create']],
  [['create', 'a/b']],
  [['create', '$gt']],
  [['delete', 'acme']],
  [['create', 'a', 'b']],
])('usage %p is refused', async (args) => {
  await expect(customersCommand.run(args)).rejects.toMatchObject({ code: 'USAGE' });
});
