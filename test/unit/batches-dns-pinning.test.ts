// An http(s) asset fetch connects to the address its host was vetted at, never to a later answer of
// the resolver (DNS rebinding). The resolver here answers a let-through address first (127.0.0.1, let
// through by an allowed range, standing for a public one) and a refused loopback one (127.0.0.2) on
// every later question; a server listens on each, so a connection to the second would be seen.
import dns from 'node:dns';
import dnsPromises from 'node:dns/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspectOrigin } from '../../src/batches/inspect';
import { jpeg, png } from '../scenarios/fixtures/images';

const CHECKED = '127.0.0.1';
const REBOUND = '127.0.0.2';

const servers: Server[] = [];
const hits: Record<string, number> = { [CHECKED]: 0, [REBOUND]: 0 };
let port = 0;

function serve(address: string, body: Buffer): Promise<Server> {
  const server = createServer((_req, res) => {
    hits[address]!++;
    res.end(body);
  });
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve(server));
  });
}

beforeAll(async () => {
  const first = await serve(CHECKED, png(4, 3));
  port = (first.address() as AddressInfo).port;
  await serve(REBOUND, jpeg(800, 600));
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

let answers: string[][];
let questions = 0;
/** The next answer of the resolver; the last one repeats. */
function answer(): { address: string; family: number }[] {
  const list = answers[Math.min(questions++, answers.length - 1)]!;
  return list.map((address) => ({ address, family: 4 }));
}

beforeEach(() => {
  questions = 0;
  hits[CHECKED] = 0;
  hits[REBOUND] = 0;
  // Both the promise API (what the fetch vets with) and the callback one (what http would connect with,
  // were the address not pinned) answer from the same sequence.
  jest.spyOn(dnsPromises, 'lookup').mockImplementation((async () => answer()) as never);
  jest.spyOn(dns, 'lookup').mockImplementation(((
    _host: string,
    options: unknown,
    cb?: (err: null, a: unknown, f?: number) => void,
  ) => {
    const callback = (typeof options === 'function' ? options : cb)!;
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
    const list = answer();
    process.nextTick(() => (all ? callback(null, list) : callback(null, list[0]!.address, 4)));
  }) as never);
});
afterEach(() => jest.restoreAllMocks());

const inspect = inspectOrigin({ timeoutMs: 2_000, allowAddresses: [`${CHECKED}/32`] });
const asset = () => ({ customerId: 'c', assetId: 'a', origin: `http://assets.example:${port}/a.png` });

test('the fetch connects to the address that was checked, not to the resolver’s next answer', async () => {
  answers = [[CHECKED], [REBOUND]];
  await expect(inspect(asset())).resolves.toMatchObject({ mediaType: 'image/png', width: 4, height: 3 });
  expect(hits).toEqual({ [CHECKED]: 1, [REBOUND]: 0 });
  expect(questions).toBe(1);
});

test('one answer naming a checked and a refused address is refused whole, and nothing is connected', async () => {
  answers = [[CHECKED, REBOUND]];
  await expect(inspect(asset())).rejects.toMatchObject({
    code: 'ASSET_REFUSED',
    message: expect.stringContaining('loopback address'),
  });
  expect(hits).toEqual({ [CHECKED]: 0, [REBOUND]: 0 });
});
