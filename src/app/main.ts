// The application: the processor running the app topology, the public HTTP server (probes, metrics,
// customer API) and the admin listener (ops, replay, provenance, tenant tables) behind the admin token.
// `keyflow start` and `keyflow demo` both run it.
import { createAdminServer } from '../api/admin';
import { createServer, type ApiServer, type RouteModule } from '../api/server';
import { provenanceRoutes } from '../api/provenance-routes';
import { replayRoutes } from '../api/replay-routes';
import { adminTokenHash, type Config } from '../config';
import type { Logger } from '../logger';
import { recentBatchProgress } from '../batches/store';
import { opsRoutes } from '../monitoring/ops-routes';
import { Processor, type ProcessorContext } from '../runtime/processor';
import { appDataflows } from './dataflows';
import { appTopology } from './topology';

export interface RunningApp {
  processor: Processor;
  server: ApiServer;
  port: number;
  admin: ApiServer;
  adminPort: number;
  /** Stops both servers, then drains the stages; safe to call twice. */
  stop(): Promise<void>;
}

/** Route modules of the public listener: the domains' customer-facing routes. */
export function appRoutes(ctx: ProcessorContext): RouteModule[] {
  return appDataflows().flatMap((f) => (f.routes ? [f.routes(ctx)] : []));
}

/** Route modules of the admin listener, given the running processor. */
export function adminAppRoutes(ctx: ProcessorContext): RouteModule[] {
  const flows = appDataflows();
  const domain = flows.flatMap((f) => (f.adminRoutes ? [f.adminRoutes(ctx)] : []));
  const replay = replayRoutes(
    ctx.db,
    flows.flatMap((f) => f.replay),
  );
  // The ops page learns batch progress from the batches domain; the engine does not import domains.
  const ops = opsRoutes({ ...ctx, batches: () => recentBatchProgress(ctx.db) });
  return [provenanceRoutes(ctx.db), ops, replay, ...domain];
}

export async function startApp(
  config: Config,
  log: Logger,
  opts: { stages?: string[] } = {},
): Promise<RunningApp> {
  const processor = new Processor({
    config,
    topology: appTopology(config),
    log,
    stages: opts.stages,
    indexes: appDataflows().flatMap((f) => f.indexes),
  });
  try {
    await processor.start();
  } catch (err) {
    await processor.stop().catch(() => undefined);
    throw err;
  }
  const server = createServer({
    log,
    registry: processor.metrics,
    health: processor.health,
    routes: appRoutes(processor.context),
  });
  const admin = createAdminServer({
    log,
    registry: processor.metrics,
    health: processor.health,
    db: processor.context.db,
    tokenHash: adminTokenHash(config),
    routes: adminAppRoutes(processor.context),
  });
  let port: number;
  let adminPort: number;
  try {
    port = await server.listen(config.port);
    adminPort = await admin.listen(config.adminPort, config.adminHost);
  } catch (err) {
    await Promise.all([server.close(), admin.close()]);
    await processor.stop().catch(() => undefined);
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    processor,
    server,
    port,
    admin,
    adminPort,
    stop() {
      stopping ??= (async () => {
        await Promise.all([server.close(), admin.close()]);
        await processor.stop();
      })();
      return stopping;
    },
  };
}

/** Resolves on the first SIGTERM or SIGINT; a second one exits at once. */
export function untilSignal(log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      log.info({ signal: sig }, 'stopping: finishing in-flight events, committing, leaving groups');
      process.once(sig, () => {
        log.warn({ signal: sig }, 'second signal: exiting without draining');
        process.exit(130);
      });
      resolve(sig);
    };
    process.once('SIGTERM', on);
    process.once('SIGINT', on);
  });
}
