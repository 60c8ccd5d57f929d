// The shipped asset handler reads file:// and http(s):// origins (a local server on 127.0.0.1 here, let
// through by an allowed address range), identifies the image and reports size, type and dimensions; a
// missing, unreadable, oversized or non-image origin fails with ASSET_INVALID saying which, a slow server
// with a retriable failure; what the asset policy refuses fails with ASSET_REFUSED "refused by policy".
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspectOrigin } from '../../src/batches/inspect';
import { jpeg, png } from '../scenarios/fixtures/images';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kf-inspect-'));
const fileUrl = (name: string) => pathToFileURL(path.join(dir, name)).href;
writeFileSync(path.join(dir, 'a.png'), png(4, 3));
writeFileSync(path.join(dir, 'notes.txt'), 'just text');

let server: Server;
const hits: string[] = [];
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/photo.jpg') return res.end(jpeg(800, 600));
    if (req.url === '/big') return res.end(Buffer.alloc(5000));
    if (req.url === '/slow') return void setTimeout(() => res.end(png(1, 1)), 2000);
    if (req.url === '/text') return res.end('<html>not an image</html>');
    if (req.url === '/moved') {
      hits.push(req.url);
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      return res.end('moved to the secret place');
    }
    if (req.url?.startsWith('/seen')) hits.push(req.url);
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise((r) => server.close(r));
});

const local = { fileRoot: dir, allowAddresses: ['127.0.0.1/32'] };
const inspect = inspectOrigin({ timeoutMs: 500, maxBytes: 4096, ...local });
const asset = (origin: string) => ({ customerId: 'c', assetId: 'a', origin });

test('a PNG file: size, type and dimensions', async () => {
  await expect(inspect(asset(fileUrl('a.png')))).resolves.toEqual({
    size: png(4, 3).length,
    mediaType: 'image/png',
    width: 4,
    height: 3,
  });
});

test('a JPEG over http', async () => {
  await expect(inspect(asset(`${base}/photo.jpg`))).resolves.toMatchObject({
    mediaType: 'image/jpeg',
    width: 800,
  });
});

test.each([
  ['a missing file', () => fileUrl('nope.png'), /does not exist/],
  ['a text file', () => fileUrl('notes.txt'), /is not an image/],
  ['a directory', () => pathToFileURL(dir).href, /not a regular file/],
  ['an http 404', () => `${base}/missing`, /answered HTTP 404/],
  ['an http body over the cap', () => `${base}/big`, /limit of 4096|the limit is 4096/],
  ['an http page that is no image', () => `${base}/text`, /is not an image/],
])('%s fails clearly and for good', async (_name, origin, message) => {
  await expect(inspect(asset(origin()))).rejects.toMatchObject({
    code: 'ASSET_INVALID',
    retriable: false,
    message,
  });
});

test('a server slower than the timeout is a retriable failure', async () => {
  await expect(inspect(asset(`${base}/slow`))).rejects.toMatchObject({
    code: 'ASSET_FETCH_FAILED',
    retriable: true,
  });
});

test('with a file root, files outside it are refused', async () => {
  mkdirSync(path.join(dir, 'sub'));
  const rooted = inspectOrigin({ fileRoot: path.join(dir, 'sub') });
  await expect(rooted(asset(fileUrl('a.png')))).rejects.toMatchObject({
    code: 'ASSET_REFUSED',
    message: /refused by policy \(outside the allowed file root\)/,
  });
});

test('a link inside the file root that points outside it is refused', async () => {
  mkdirSync(path.join(dir, 'linked'));
  symlinkSync('/etc/passwd', path.join(dir, 'linked', 'passwd.png'));
  const rooted = inspectOrigin({ fileRoot: path.join(dir, 'linked') });
  await expect(rooted(asset(fileUrl('linked/passwd.png')))).rejects.toMatchObject({
    code: 'ASSET_REFUSED',
    message: /refused by policy \(outside the allowed file root\)/,
  });
});

test('without a file root, file origins are refused', async () => {
  await expect(inspectOrigin()(asset(fileUrl('a.png')))).rejects.toMatchObject({
    code: 'ASSET_REFUSED',
    retriable: false,
    message: /refused by policy \(file origins are not enabled\)/,
  });
});

test('a redirect is not followed, and what the target said is not echoed', async () => {
  const err = await inspect(asset(`${base}/moved`)).catch((e: unknown) => e);
  expect(err).toMatchObject({
    code: 'ASSET_REFUSED',
    message: /refused by policy \(redirects are not followed\)/,
  });
  expect((err as Error).message).not.toMatch(/169\.254|secret place/);
});

test.each([
  ['loopback', (port: string) => `http://127.0.0.1:${port}/seen-1`],
  ['localhost by name', (port: string) => `http://localhost:${port}/seen-2`],
  ['IPv4-mapped IPv6 loopback', (port: string) => `http://[::ffff:127.0.0.1]:${port}/seen-3`],
  ['a decimal loopback', (port: string) => `http://2130706433:${port}/seen-4`],
])('without an allowed range, %s is refused before any request', async (_name, origin) => {
  const strict = inspectOrigin({ timeoutMs: 500 });
  await expect(strict(asset(origin(new URL(base).port)))).rejects.toMatchObject({
    code: 'ASSET_REFUSED',
    message: /refused by policy \(loopback address\)/,
  });
  expect(hits.filter((h) => h.startsWith('/seen'))).toEqual([]);
});

test('a host allow-list refuses other hosts, before resolving them', async () => {
  const listed = inspectOrigin({ allowHosts: ['*.assets.example'], ...local });
  await expect(listed(asset(`${base}/photo.jpg`))).rejects.toMatchObject({
    code: 'ASSET_REFUSED',
    message: /host is not on the allow-list/,
  });
  const byIp = inspectOrigin({ allowHosts: ['127.0.0.1'], ...local });
  await expect(byIp(asset(`${base}/photo.jpg`))).resolves.toMatchObject({ mediaType: 'image/jpeg' });
});

test('credentials and query strings of an origin stay out of its error', async () => {
  const u = new URL(base);
  const err: Error = await inspect(asset(`http://joe:pa55word@${u.host}/missing?token=abc123#frag`)).then(
    () => new Error('resolved'),
    (e: Error) => e,
  );
  expect(err).toMatchObject({ code: 'ASSET_INVALID', message: /answered HTTP 404/ });
  expect(err.message).toContain(`http://***@${u.host}/missing?…`);
  expect(err.message).not.toMatch(/joe|pa55word|token|abc123|frag/);
});
