// The admin surface: its own listener (ADMIN_HOST:ADMIN_PORT, loopback by default) for /ops, /replay,
// /provenance and the /tenants tables. Every request needs the admin token, as a bearer header or as the
// cookie the /ops login sets; state-changing ones must be same-site JSON and are audited before they run.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from 'mongodb';
import { z } from 'zod';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger';
import type { HealthSource } from '../monitoring/health';
import { createServer, parseInput, type ApiServer, type RouteModule } from './server';

export const ADMIN_AUDIT_COLLECTION = 'keyflow_admin_audit';
export const ADMIN_COOKIE = 'keyflow_admin';
/** A browser session of the /ops page lasts at most this long. */
const COOKIE_MAX_AGE_S = 12 * 3600;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** How much of a request body the audit keeps. */
const AUDIT_BODY_CHARS = 2000;

export interface AuditRecord {
  _id: string;
  at: Date;
  /** Who: the token's fingerprint (first 12 hex digits of its SHA-256), address and user agent. */
  who: { token: string; ip: string; userAgent: string | null };
  /** What: the method, the route pattern, the URL as sent, and the body (truncated). */
  method: string;
  route: string;
  url: string;
  body: string | null;
  /** Set once the response is sent. */
  status?: number;
  finishedAt?: Date;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Constant-time check of a presented token against the configured hash. */
export function tokenMatches(presented: string, expectedHash: string): boolean {
  const got = createHash('sha256').update(presented, 'utf8').digest();
  const want = Buffer.from(expectedHash, 'hex');
  return want.length === got.length && timingSafeEqual(got, want);
}

function cookieToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === ADMIN_COOKIE) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined; // a malformed cookie is no token
      }
    }
  }
  return undefined;
}

function presentedToken(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
  return m ? m[1] : cookieToken(req.headers.cookie);
}

function refuse(reply: FastifyReply, status: number, code: string, message: string) {
  if (status === 401) void reply.header('www-authenticate', 'Bearer realm="keyflow-admin"');
  return reply.status(status).send({ error: { code, message } });
}

/** A request is cross-site when the browser says so, or when its Origin names another host. */
function crossSite(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = req.headers.origin;
  if (typeof origin !== 'string' || origin === '') return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

const loginBody = z.strictObject({ token: z.string().min(1).max(1024) });

export interface AdminGuardOptions {
  /** SHA-256 (hex) of the admin token; undefined refuses every admin request. */
  tokenHash: string | undefined;
  db: Db;
  log: Logger;
}

/** The guard: mount it before the admin routes. */
export function adminGuard(opts: AdminGuardOptions): RouteModule {
  const { tokenHash, db } = opts;
  const audit = db.collection<AuditRecord>(ADMIN_AUDIT_COLLECTION);
  const fingerprint = tokenHash?.slice(0, 12) ?? 'none';
  const audited = new WeakMap<FastifyRequest, string>();

  return (app) => {
    app.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?')[0];
      const stateChanging = !SAFE_METHODS.has(req.method);
      if (stateChanging) {
        if (crossSite(req)) {
          return refuse(reply, 403, 'ADMIN_CROSS_SITE', 'admin actions are refused from other sites');
        }
        const type = req.headers['content-type'];
        if (typeof type !== 'string' || !/^application\/json\b/i.test(type)) {
          return refuse(
            reply,
            415,
            'ADMIN_JSON_REQUIRED',
            'admin actions take a JSON body: send "content-type: application/json" and at least {}',
          );
        }
      }
      if (path === '/ops/login') return;
      if (tokenHash === undefined) {
        return refuse(
          reply,
          401,
          'ADMIN_UNAUTHORIZED',
          'no admin token is configured on this instance; set KEYFLOW_ADMIN_TOKEN_HASH (or KEYFLOW_ADMIN_TOKEN) and restart',
        );
      }
      const token = presentedToken(req);
      if (token !== undefined && tokenMatches(token, tokenHash)) return;
      if (req.method === 'GET' && path === '/ops') {
        return reply
          .status(401)
          .header('content-type', 'text/html; charset=utf-8')
          .header('cache-control', 'no-store')
          .send(LOGIN_PAGE_HTML);
      }
      return refuse(
        reply,
        401,
        'ADMIN_UNAUTHORIZED',
        token === undefined
          ? 'send the admin token as "Authorization: Bearer <token>" (or log in at /ops)'
          : 'the admin token is not valid',
      );
    });

    // The action runs only once its audit record is stored; the response status is added after.
    app.addHook('preHandler', async (req, reply) => {
      if (SAFE_METHODS.has(req.method)) return;
      const isLogin = req.url.split('?')[0] === '/ops/login';
      const rec: AuditRecord = {
        _id: randomUUID(),
        at: new Date(),
        who: {
          token: isLogin ? 'login' : fingerprint,
          ip: req.ip,
          userAgent: req.headers['user-agent'] ?? null,
        },
        method: req.method,
        route: req.routeOptions.url ?? req.url.split('?')[0]!,
        url: req.url,
        // A login's body is the token itself: never stored.
        body: isLogin || req.body === undefined ? null : JSON.stringify(req.body).slice(0, AUDIT_BODY_CHARS),
      };
      try {
        await audit.insertOne(rec);
        audited.set(req, rec._id);
      } catch (err) {
        req.log.error({ err, route: rec.route }, 'admin audit write failed; action refused');
        return refuse(
          reply,
          503,
          'ADMIN_AUDIT_FAILED',
          'the audit record could not be written; nothing was done, try again',
        );
      }
    });

    app.addHook('onResponse', async (req, reply) => {
      const id = audited.get(req);
      if (id === undefined) return;
      await audit
        .updateOne({ _id: id }, { $set: { status: reply.statusCode, finishedAt: new Date() } })
        .catch((err: unknown) => req.log.error({ err, id }, 'admin audit status update failed'));
    });

    // The /ops page's login: checks the token and keeps it in a same-site, script-invisible cookie.
    app.post('/ops/login', async (req, reply) => {
      const { token } = parseInput(loginBody, req.body, 'body');
      if (tokenHash === undefined || !tokenMatches(token, tokenHash)) {
        return refuse(reply, 401, 'ADMIN_UNAUTHORIZED', 'the admin token is not valid');
      }
      return reply
        .header(
          'set-cookie',
          `${ADMIN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${COOKIE_MAX_AGE_S}`,
        )
        .send({ ok: true });
    });

    app.post('/ops/logout', async (_req, reply) =>
      reply
        .header('set-cookie', `${ADMIN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`)
        .send({ ok: true }),
    );
  };
}

export interface AdminServerOptions extends AdminGuardOptions {
  registry: Registry;
  health: HealthSource;
  routes: RouteModule[];
}

/** The admin listener: the guard first, then the admin routes; no probes or metrics here. */
export function createAdminServer(opts: AdminServerOptions): ApiServer {
  if (opts.tokenHash === undefined) {
    opts.log.warn(
      'no admin token configured (KEYFLOW_ADMIN_TOKEN_HASH or KEYFLOW_ADMIN_TOKEN): every admin request is refused',
    );
  }
  return createServer({
    log: opts.log,
    registry: opts.registry,
    health: opts.health,
    probes: false,
    name: 'admin',
    routes: [adminGuard(opts), ...opts.routes],
  });
}

const LOGIN_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Keyflow ops: log in</title>
<style>body{font:14px system-ui,sans-serif;margin:3rem auto;max-width:28rem}input,button{font:inherit;padding:.3rem}</style>
</head><body>
<h1>Keyflow ops</h1>
<form id="login"><label>Admin token <input id="token" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button></form>
<p id="result" role="status"></p>
<script>
document.getElementById('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const res = await fetch('/ops/login', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: document.getElementById('token').value }) });
  if (res.ok) location.reload();
  else document.getElementById('result').textContent = 'log-in refused: ' + ((await res.json()).error || {}).message;
});
</script>
</body></html>
`;
