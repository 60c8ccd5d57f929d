// The shipped asset handler reads file:// and http(s):// origins (a local server on 127.0.0.1 here),
// identifies the image and reports size, type and dimensions; a missing, unreadable, oversized or
// non-image origin fails with ASSET_INVALID saying which, and a slow server with a retriable failure.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
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
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/photo.jpg') return res.end(jpeg(800, 600));
    if (req.url === '/big') return res.end(Buffer.alloc(5000));
    if (req.url === '/slow') return void setTimeout(() => res.end(png(1, 1)), 2000);
    if (req.url === '/text') return res.end('<html>not an image</html>');
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

const inspect = inspectOrigin({ timeoutMs: 500, maxBytes: 4096 });
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
    code: 'ASSET_INVALID',
    message: /outside the allowed file root/,
  });
});
