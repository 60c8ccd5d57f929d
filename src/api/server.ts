// The one HTTP server: liveness, readiness, Prometheus metrics, and the route modules the rooms export.
// Errors leave as JSON `{error: {code, message}}` — bad input 4xx naming the problem, never a stack trace.
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
} from 'fastify';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { KeyflowError } from '../errors';
import type { Logger } from '../logger';
import type { HealthSource } from '../monitoring/health';

/** Adds routes to the server; called once before it listens. */
export type RouteModule = (app: FastifyInstance) => void;

export interface ServerOptions {
  log: Logger;
  registry: Registry;
  health: HealthSource;
  routes?: RouteModule[];
  /** Largest accepted request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Serve /healthz, /readyz and /metrics (default true; the admin listener leaves them to the public one). */
  probes?: boolean;
  /** Names the listener in its log lines (default `api`). */
  name?: string;
}

export interface ApiServer {
  app: FastifyInstance;
  /** Listens on `port` (0 picks a free one) and returns the port in use. */
  listen(port: number, host?: string): Promise<number>;
  /** Stops accepting and waits for in-flight requests; safe to call more than once. */
  close(): Promise<void>;
}

/** HTTP status for a Keyflow error code: the caller's fault 4xx, a dependency down 503, else 500. */
const STATUS_BY_CODE: Record<string, number> = {
  VALIDATION_FAILED: 400,
  USAGE: 400,
  KEY_MISSING: 400,
  LEASE_BUSY: 409,
  ADMIN_UNAUTHORIZED: 401,
  ADMIN_CROSS_SITE: 403,
  ADMIN_JSON_REQUIRED: 415,
  ADMIN_AUDIT_FAILED: 503,
  UNREACHABLE: 503,
  STORE_TRANSIENT: 503,
};

export interface ErrorBody {
  error: { code: string; message: string };
}

/** zod issues as one line: `params.id: Too big: expected string to have <=200 characters`. */
export function describeIssues(err: z.ZodError, where: string): string {
  return err.issues
    .map((i) => `${[where, ...i.path].filter((p) => p !== '').join('.')}: ${i.message}`)
    .join('; ');
}

/** Parses `value` with `schema`, throwing VALIDATION_FAILED (→ 400) that names the field at fault. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const res = schema.safeParse(value);
  if (!res.success) {
    throw new KeyflowError('VALIDATION_FAILED', describeIssues(res.error, where), { retriable: false });
  }
  return res.data;
}

export function createServer(opts: ServerOptions): ApiServer {
  const name = opts.name ?? 'api';
  const log = opts.log.child({ component: name });
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // Scrapes and probes every few seconds would drown the log; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    // Ids up to 512 characters reach the routes, whose zod schemas then say what is wrong with them.
    routerOptions: { maxParamLength: 1024 },
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    return503OnClosing: true,
  });

  app.setErrorHandler((err: FastifyError | KeyflowError | z.ZodError, req, reply) => {
    const { status, body } = toErrorResponse(err);
    if (status >= 500) req.log.error({ err, url: req.url, method: req.method }, 'request failed');
    else req.log.debug({ url: req.url, code: body.error.code }, 'request refused');
    void reply.status(status).send(body);
  });

  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = {
      error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${req.url}` },
    };
    void reply.status(404).send(body);
  });

  if (opts.probes ?? true) {
    app.get('/healthz', async () => ({ status: 'ok' }));

    app.get('/readyz', async (_req, reply) => {
      const report = await opts.health.readiness();
      return reply
        .status(report.ready ? 200 : 503)
        .send({ status: report.ready ? 'ready' : 'not ready', ...report });
    });

    app.get('/metrics', async (_req, reply) => {
      const text = await opts.registry.metrics();
      return reply.header('content-type', opts.registry.contentType).send(text);
    });
  }

  for (const mount of opts.routes ?? []) mount(app);

  let closing: Promise<void> | undefined;
  return {
    app,
    async listen(port, host = '0.0.0.0') {
      await app.listen({ port, host });
      const addr = app.server.address();
      const bound = typeof addr === 'object' && addr ? addr.port : port;
      log.info({ port: bound, host, listener: name }, 'HTTP server listening');
      return bound;
    },
    close() {
      closing ??= app.close();
      return closing;
    },
  };
}

function toErrorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof z.ZodError) {
    return { status: 400, body: { error: { code: 'VALIDATION_FAILED', message: describeIssues(err, '') } } };
  }
  if (err instanceof KeyflowError) {
    const status = STATUS_BY_CODE[err.code] ?? 500;
    return { status, body: { error: { code: err.code, message: err.message } } };
  }
  const fe = err as Partial<FastifyError>;
  // fastify's own refusals (body too large, malformed JSON, wrong content type) carry a 4xx statusCode.
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return {
      status: fe.statusCode,
      body: { error: { code: fe.code ?? 'BAD_REQUEST', message: fe.message ?? 'bad request' } },
    };
  }
  return {
    status: 500,
    body: { error: { code: 'INTERNAL', message: 'internal error; see the server log' } },
  };
}
