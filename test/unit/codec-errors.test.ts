// The codec's failure modes that need no real registry: wire-format checks, zod messages that name
// the field path, and a registry that does not answer becoming a retriable UNREACHABLE.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { KeyflowError } from '../../src/errors';
import { RegistryCodec, readWireHeader, registryFailure, validateValue } from '../../src/schemas';
import type { TopicSpec } from '../../src/topology/types';

function errorOf(fn: () => unknown): KeyflowError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KeyflowError);
    return err as KeyflowError;
  }
  throw new Error('expected a KeyflowError');
}

const pingTopic: TopicSpec = {
  name: 'pings',
  partitions: 1,
  replicationFactor: 1,
  cleanupPolicy: 'delete',
  key: 'id',
  value: {
    avro: {
      type: 'record',
      name: 'Ping',
      namespace: 'keyflow.test',
      fields: [{ name: 'id', type: 'string' }],
    },
    zod: z.object({ id: z.string() }),
  },
};

test('bytes shorter than the wire header or without magic byte 0 are DECODE_FAILED', () => {
  // A consumer must tell "not ours" apart from "unknown schema" before asking the registry anything.
  const short = errorOf(() => readWireHeader(Buffer.from([0, 0, 1])));
  expect(short.code).toBe('DECODE_FAILED');
  expect(short.message).toContain('has 3 bytes');
  const magic = errorOf(() => readWireHeader(Buffer.from('{"json":true}')));
  expect(magic.code).toBe('DECODE_FAILED');
  expect(magic.message).toContain('starts with byte 0x7b, not the magic byte 0x00');
  expect(readWireHeader(Buffer.from([0, 0, 0, 1, 2, 9, 9]))).toEqual({ schemaId: 258 });
});

test('a zod failure is VALIDATION_FAILED naming the field path', () => {
  // The message must point at the field, so a producer bug is found without a debugger.
  const schema = z.object({ order: z.object({ lines: z.array(z.object({ qty: z.number().int() })) }) });
  const err = errorOf(() =>
    validateValue(schema, { order: { lines: [{ qty: 1 }, { qty: 'two' }] } }, 'value'),
  );
  expect(err.code).toBe('VALIDATION_FAILED');
  expect(err.retriable).toBe(false);
  expect(err.message).toMatch(/^value is invalid at order\.lines\[1\]\.qty: /);
  expect(err.details?.issues).toEqual([{ path: 'order.lines[1].qty', message: expect.any(String) }]);
  expect(validateValue(schema, { order: { lines: [] } }, 'value')).toEqual({ order: { lines: [] } });
});

test('registry answers map to codes: 404 unknown, 409 incompatible, 5xx or no answer retriable', () => {
  // The stage runner routes on code and retriable only, so the mapping is the whole contract.
  expect(registryFailure({ status: 404, message: 'keyflow - Schema 7 not found' }, 'x').code).toBe(
    'SCHEMA_UNKNOWN',
  );
  const incompatible = registryFailure({ status: 409, message: 'keyflow - Incompatible schema' }, 'x');
  expect(incompatible.code).toBe('SCHEMA_INCOMPATIBLE');
  expect(incompatible.message).toContain('Incompatible schema');
  expect(registryFailure({ status: 503, message: 'keyflow - busy' }, 'x')).toMatchObject({
    code: 'UNREACHABLE',
    retriable: true,
  });
  // How the registry client reports a refused connection: status 400 with no registry message.
  const refused = registryFailure(
    { status: 400, message: 'keyflow - Error, status 400: connect ECONNREFUSED' },
    'x',
  );
  expect(refused).toMatchObject({ code: 'UNREACHABLE', retriable: true });
  expect(registryFailure({ status: 401, message: 'keyflow - Unauthorized' }, 'x').code).toBe(
    'CONFIG_INVALID',
  );
});

test('registerAll against a registry that does not answer is UNREACHABLE and retriable', async () => {
  // Start-up must retry (not crash for good) while the registry is still coming up.
  const codec = new RegistryCodec({ url: 'http://127.0.0.1:1' });
  await expect(codec.registerAll([pingTopic])).rejects.toMatchObject({
    code: 'UNREACHABLE',
    retriable: true,
  });
});

test('decode while the registry is down is UNREACHABLE (retriable), not SCHEMA_UNKNOWN', async () => {
  // A schema id the codec has not seen yet must be looked up; the registry being down must not
  // dead-letter the message as if the id were unknown.
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/vnd.schemaregistry.v1+json');
    if (req.method === 'PUT') return res.end(JSON.stringify({ compatibility: 'BACKWARD' }));
    if (req.method === 'GET' && req.url?.startsWith('/config/')) {
      return res.end(JSON.stringify({ compatibilityLevel: 'BACKWARD' }));
    }
    if (req.method === 'POST') return res.end(JSON.stringify({ id: 1 }));
    res.statusCode = 500;
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const codec = new RegistryCodec({ url: `http://127.0.0.1:${port}` });
  expect(await codec.registerAll([pingTopic])).toEqual(new Map([['pings', 1]]));
  // A value encoded with the id the codec knows round-trips without the registry.
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  const bytes = await codec.encode('pings', { id: 'a' });
  expect(await codec.decode('pings', bytes)).toEqual({ value: { id: 'a' }, schemaId: 1 });

  const unseen = Buffer.from([0, 0, 0, 0, 42, 2, 0x61]);
  await expect(codec.decode('pings', unseen)).rejects.toMatchObject({ code: 'UNREACHABLE', retriable: true });
});

test('encode and decode of a topic with no registered schema say to call registerAll', async () => {
  // Using the codec before registration is a wiring bug; the message names the fix.
  const codec = new RegistryCodec({ url: 'http://127.0.0.1:1' });
  await expect(codec.encode('pings', { id: 'a' })).rejects.toMatchObject({
    code: 'TOPOLOGY_INVALID',
    message: expect.stringContaining('call registerAll() first'),
  });
});
