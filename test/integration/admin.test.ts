// The admin surface of the assembled app: /ops, /replay, /provenance and /tenants answer only on the admin
// listener and only with the admin token; state-changing requests must be same-site JSON and are audited.
import { Writable } from 'node:stream';
import { ADMIN_AUDIT_COLLECTION, createAdminServer, sha256Hex, type AuditRecord } from '../../src/api/admin';
import { provenanceRoutes } from '../../src/api/provenance-routes';
import { startApp, type RunningApp } from '../../src/app/main';
import { createLogger } from '../../src/logger';
import { HealthSource } from '../../src/monitoring/health';
import { createMetricsRegistry } from '../../src/monitoring/metrics';
import { cleanupAll, eventually, freshDb, onCleanup } from '../helpers';
import { freshDbNamed, testConfig } from '../scenarios/harness';

const TOKEN = 'test-admin-token-0123456789-abcdefghij';
const ADMIN_PATHS = [
  '/ops',
  '/ops/api/stages',
  '/ops/api/batches',
  '/replay/appt-1',
  '/provenance/events/e1',
  '/tenants/acme/out-of-order',
];

let app: RunningApp;
let pub: string;
let adm: string;
let logged = '';

beforeAll(async () => {
  const config = testConfig({ PORT: '0', ADMIN_PORT: '0', KEYFLOW_ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'debug' });
  const sink = new Writable({
    write(chunk, _enc, done) {
      logged += String(chunk);
      done();
    },
  });
  app = await startApp(config, createLogger('debug', sink));
  onCleanup(() => app.stop());
  pub = `http://127.0.0.1:${app.port}`;
  adm = `http://127.0.0.1:${app.adminPort}`;
}, 60_000);
afterAll(cleanupAll);

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

test('admin paths are not routes of the public listener, which keeps the probes and metrics', async () => {
  for (const path of ADMIN_PATHS) {
    const res = await fetch(pub + path, { headers: bearer(TOKEN) });
    expect([path, res.status]).toEqual([path, 404]);
  }
  const post = await fetch(`${pub}/replay/appt-1/repair`, {
    method: 'POST',
    headers: { ...bearer(TOKEN), 'content-type': 'application/json' },
    body: '{}',
  });
  expect(post.status).toBe(404);
  for (const path of ['/healthz', '/metrics']) expect((await fetch(pub + path)).status).toBe(200);
  for (const path of ['/healthz', '/readyz', '/metrics']) {
    expect((await fetch(adm + path, { headers: bearer(TOKEN) })).status).toBe(404);
  }
});

test('admin routes answer 401 without the token or with a wrong one, and 200 with it', async () => {
  for (const path of ADMIN_PATHS) {
    const none = await fetch(adm + path);
    expect([path, none.status]).toEqual([path, 401]);
    const wrong = await fetch(adm + path, { headers: bearer(TOKEN + 'x') });
    expect([path, wrong.status]).toEqual([path, 401]);
    const right = await fetch(adm + path, { headers: bearer(TOKEN) });
    expect([path, right.status]).toEqual([path, 200]);
  }
  const wrong = await fetch(`${adm}/ops/api/stages`, { headers: bearer('nope') });
  expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer/);
  expect(await wrong.json()).toEqual({
    error: { code: 'ADMIN_UNAUTHORIZED', message: 'the admin token is not valid' },
  });
  // The page itself asks a browser to log in.
  const page = await fetch(`${adm}/ops`);
  expect(page.headers.get('content-type')).toMatch(/text\/html/);
  expect(await page.text()).toContain('id="login"');
});

test('the /ops log-in sets a same-site cookie that the page and its API then use', async () => {
  const json = { 'content-type': 'application/json' };
  const bad = await fetch(`${adm}/ops/login`, { method: 'POST', headers: json, body: '{"token":"no"}' });
  expect(bad.status).toBe(401);
  expect(bad.headers.get('set-cookie')).toBeNull();
  const ok = await fetch(`${adm}/ops/login`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ token: TOKEN }),
  });
  expect(ok.status).toBe(200);
  const cookie = ok.headers.get('set-cookie')!;
  expect(cookie).toMatch(/HttpOnly/);
  expect(cookie).toMatch(/SameSite=Strict/);
  const pair = cookie.split(';')[0]!;
  const page = await fetch(`${adm}/ops`, { headers: { cookie: pair } });
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('/ops/api/stages');
  expect((await fetch(`${adm}/ops/api/stages`, { headers: { cookie: pair } })).status).toBe(200);
  expect((await fetch(`${adm}/ops/api/stages`, { headers: { cookie: 'keyflow_admin=x' } })).status).toBe(401);
});

test('state-changing admin requests refuse cross-site use and are audited before they run', async () => {
  const { db } = await freshDbNamed(app.processor.context.db.databaseName);
  const audit = db.collection<AuditRecord>(ADMIN_AUDIT_COLLECTION);
  const url = `${adm}/replay/appt-77/repair`;
  const form = await fetch(url, {
    method: 'POST',
    headers: { ...bearer(TOKEN), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'a=1',
  });
  expect(form.status).toBe(415);
  expect(((await form.json()) as { error: { code: string } }).error.code).toBe('ADMIN_JSON_REQUIRED');
  const noBody = await fetch(url, { method: 'POST', headers: bearer(TOKEN) });
  expect(noBody.status).toBe(415);
  const crossSite: Record<string, string>[] = [
    { 'sec-fetch-site': 'cross-site' },
    { origin: 'http://evil.example' },
  ];
  for (const cross of crossSite) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...bearer(TOKEN), 'content-type': 'application/json', ...cross },
      body: '{}',
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ADMIN_CROSS_SITE');
  }
  const unauthorised = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  expect(unauthorised.status).toBe(401);
  expect(await audit.countDocuments({ url: '/replay/appt-77/repair' })).toBe(0);

  const done = await fetch(url, {
    method: 'POST',
    headers: {
      ...bearer(TOKEN),
      'content-type': 'application/json',
      'user-agent': 'admin-test',
      origin: adm,
    },
    body: '{}',
  });
  expect(done.status).toBe(200);
  const rec = await eventually(
    async () =>
      (await audit.findOne({ url: '/replay/appt-77/repair', status: { $exists: true } })) ?? undefined,
    10_000,
    'audit status',
  );
  expect(rec).toMatchObject({
    who: { token: sha256Hex(TOKEN).slice(0, 12), ip: '127.0.0.1', userAgent: 'admin-test' },
    method: 'POST',
    route: '/replay/:entityId/repair',
    body: '{}',
    status: 200,
  });
  expect(rec.at).toBeInstanceOf(Date);
  // A log-in is audited too, without its body: the token is stored nowhere.
  const logins = await audit.find({ route: '/ops/login' }).toArray();
  expect(logins.length).toBeGreaterThan(0);
  expect(JSON.stringify(await audit.find({}).toArray())).not.toContain(TOKEN);
});

test('neither the token nor its hash reaches the log', () => {
  expect(logged).toContain('HTTP server listening');
  expect(logged).not.toContain(TOKEN);
  expect(logged).not.toContain(sha256Hex(TOKEN));
});

test('without a configured token every admin request is refused, and start-up says so', async () => {
  const { db } = await freshDb('kfadmin');
  let lines = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines += String(chunk);
      done();
    },
  });
  const server = createAdminServer({
    log: createLogger('warn', sink),
    registry: createMetricsRegistry(),
    health: new HealthSource(),
    db,
    tokenHash: undefined,
    routes: [provenanceRoutes(db)],
  });
  onCleanup(() => server.close());
  const base = `http://127.0.0.1:${await server.listen(0, '127.0.0.1')}`;
  expect(lines).toContain('no admin token configured');
  for (const headers of [{}, bearer(TOKEN), bearer('')]) {
    const res = await fetch(`${base}/provenance/events/e1`, { headers });
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('ADMIN_UNAUTHORIZED');
    expect(body.error.message).toContain('KEYFLOW_ADMIN_TOKEN_HASH');
  }
  const login = await fetch(`${base}/ops/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: TOKEN }),
  });
  expect(login.status).toBe(401);
});

test('a state-changing request whose audit record cannot be written is refused and not run', async () => {
  const { db } = await freshDb('kfaudit');
  // A unique index the audit record clashes with: every POST's record has method "POST".
  const audit = db.collection<AuditRecord>(ADMIN_AUDIT_COLLECTION);
  await audit.createIndex({ method: 1 }, { unique: true, name: 'clash' });
  await audit.insertOne({ _id: 'blocker', method: 'POST' } as AuditRecord);
  let ran = 0;
  const server = createAdminServer({
    log: createLogger('silent'),
    registry: createMetricsRegistry(),
    health: new HealthSource(),
    db,
    tokenHash: sha256Hex(TOKEN),
    routes: [
      (a) => {
        a.post('/act', async () => ({ ran: ++ran }));
      },
    ],
  });
  onCleanup(() => server.close());
  const base = `http://127.0.0.1:${await server.listen(0, '127.0.0.1')}`;
  const act = () =>
    fetch(`${base}/act`, {
      method: 'POST',
      headers: { ...bearer(TOKEN), 'content-type': 'application/json' },
      body: '{}',
    });

  const refused = await act();
  expect(refused.status).toBe(503);
  expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('ADMIN_AUDIT_FAILED');
  expect(ran).toBe(0);
  expect(await audit.countDocuments()).toBe(1);

  // The same request runs, audited, once the record can be written.
  await audit.dropIndex('clash');
  const ok = await act();
  expect(ok.status).toBe(200);
  expect(ran).toBe(1);
  expect(await audit.countDocuments({ route: '/act' })).toBe(1);
});
