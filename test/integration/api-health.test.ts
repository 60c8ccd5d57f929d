// The HTTP server on a real port: /healthz is up, /readyz is 200 only while every readiness check passes
// (503 with per-check detail otherwise), /metrics serves Prometheus text, provenance routes answer from
// MongoDB, and every error is JSON {error: {code, message}} — 400 naming bad input, 404, 413, 500 without stack.
import { createServer, type ApiServer } from '../../src/api/server';
import { provenanceRoutes } from '../../src/api/provenance-routes';
import { EVENTS, Instrumentation, type HandledEvent } from '../../src/instrumentation';
import { createLogger } from '../../src/logger';
import { HealthSource, mongoCheck } from '../../src/monitoring/health';
import { createMetricsRegistry, registerStageMetrics } from '../../src/monitoring/metrics';
import { ProvenanceRecorder } from '../../src/state/provenance';
import { cleanupAll, freshDb, onCleanup } from '../helpers';

jest.setTimeout(60_000);
afterAll(cleanupAll);

let server: ApiServer;
let base: string;
let health: HealthSource;
let inst: Instrumentation;

beforeAll(async () => {
  const { db } = await freshDb();
  const log = createLogger('silent');
  const registry = createMetricsRegistry();
  inst = new Instrumentation(log);
  registerStageMetrics(registry, inst);
  health = new HealthSource(500);
  health.register('mongo', mongoCheck(db));
  const recorder = new ProvenanceRecorder(db, inst, log, { flushIntervalMs: 60_000 });
  onCleanup(() => recorder.close());
  inst.emit(EVENTS.EVENT_HANDLED, {
    stage: 'book',
    topic: 'appointments',
    partition: 0,
    offset: '3',
    key: 'appt-1',
    eventId: 'e1',
    consumedAt: 2000,
    finishedAt: 2005,
    attempt: 1,
    outcome: 'applied',
    outOfOrder: false,
    emitted: [],
  } as unknown as HandledEvent);
  await recorder.flush();

  const testRoutes = (app: ApiServer['app']) => {
    app.post('/echo', async (req) => ({ got: req.body }));
    app.get('/boom', async () => {
      throw new Error('secret internals');
    });
  };
  server = createServer({
    log,
    registry,
    health,
    routes: [provenanceRoutes(db), testRoutes],
    bodyLimit: 1024,
  });
  const port = await server.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${port}`;
  onCleanup(() => server.close());
});

interface Reply {
  status: number;
  type: string | null;
  text: string;
  // Shapes differ per route; the assertions below say what each must hold.
  body: { error: { code: string; message: string } } & Record<string, unknown>;
}

async function get(path: string): Promise<Reply> {
  const res = await fetch(base + path);
  const type = res.headers.get('content-type');
  const text = await res.text();
  return {
    status: res.status,
    type,
    text,
    body: type?.includes('json') ? (JSON.parse(text) as Reply['body']) : ({} as Reply['body']),
  };
}

test('/healthz answers while the process is up', async () => {
  expect(await get('/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
});

test('/readyz is 200 when every check passes and 503 with per-check detail when one fails or hangs', async () => {
  const ok = await get('/readyz');
  expect(ok.status).toBe(200);
  expect(ok.body).toMatchObject({ status: 'ready', ready: true, checks: { mongo: { ok: true } } });

  const offFail = health.register('settings', () => ({ ok: false, detail: 'tenant-settings not caught up' }));
  const offHang = health.register('hangs', () => new Promise<boolean>(() => undefined));
  const bad = await get('/readyz');
  expect(bad.status).toBe(503);
  expect(bad.body).toMatchObject({
    status: 'not ready',
    ready: false,
    checks: {
      mongo: { ok: true },
      settings: { ok: false, detail: 'tenant-settings not caught up' },
      hangs: { ok: false, detail: 'no answer within 500ms' },
    },
  });
  offFail();
  offHang();
  expect((await get('/readyz')).status).toBe(200);
});

test('/metrics serves Prometheus text with process and stage metrics', async () => {
  const res = await get('/metrics');
  expect(res.status).toBe(200);
  expect(res.type).toMatch(/^text\/plain/);
  expect(res.text).toContain('process_cpu_user_seconds_total');
  expect(res.text).toContain('keyflow_events_total{stage="book",outcome="applied"} 1');
});

test('provenance routes answer by entity and by event, and name the bad parameter with 400', async () => {
  const entity = await get('/provenance/entities/appt-1?limit=5');
  expect(entity.status).toBe(200);
  expect(entity.body).toMatchObject({
    entity: 'appt-1',
    count: 1,
    records: [{ position: 'book:appointments:0:3', eventId: 'e1' }],
  });
  const event = await get('/provenance/events/e1');
  expect(event.body).toMatchObject({ eventId: 'e1', count: 1 });
  expect((await get('/provenance/events/nope')).body).toMatchObject({ count: 0, records: [] });

  const badLimit = await get('/provenance/entities/appt-1?limit=0');
  expect(badLimit.status).toBe(400);
  expect(badLimit.body.error.code).toBe('VALIDATION_FAILED');
  expect(badLimit.body.error.message).toMatch(/^query\.limit: /);
  const unknownQuery = await get('/provenance/entities/appt-1?colour=red');
  expect(unknownQuery.status).toBe(400);
  expect(unknownQuery.body.error.message).toMatch(/colour/);
  const longId = await get(`/provenance/events/${'x'.repeat(600)}`);
  expect(longId.status).toBe(400);
  expect(longId.body.error.message).toMatch(/^params\.eventId: /);
});

test('unknown routes, oversized or malformed bodies and crashes come back as JSON errors without stacks', async () => {
  const missing = await get('/nope');
  expect(missing).toMatchObject({
    status: 404,
    body: { error: { code: 'NOT_FOUND', message: 'no route for GET /nope' } },
  });

  const big = await fetch(`${base}/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pad: 'x'.repeat(4096) }),
  });
  expect(big.status).toBe(413);
  expect(((await big.json()) as Reply['body']).error.code).toBe('FST_ERR_CTP_BODY_TOO_LARGE');

  const malformed = await fetch(`${base}/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"a":',
  });
  expect(malformed.status).toBe(400);
  expect(((await malformed.json()) as Reply['body']).error).toHaveProperty('code');

  const boom = await get('/boom');
  expect(boom.status).toBe(500);
  expect(boom.body).toEqual({ error: { code: 'INTERNAL', message: 'internal error; see the server log' } });
  expect(JSON.stringify(boom.body)).not.toContain('secret internals');
});

test('close() is safe to call twice', async () => {
  await server.close();
  await server.close();
  await expect(fetch(`${base}/healthz`)).rejects.toThrow();
});
