// A processor instance of its own for the fault suite: both flows' stages on the arena named by
// FAULT_PREFIX (FAULT_PARTITIONS partitions), settings from the environment. Prints READY once it
// runs; drains and exits 0 on SIGTERM, so the suite can kill it, stop it, or let it leave. With
// FAULT_TARGETS_DIR set it serves /metrics on a free port and registers it there for Prometheus. It
// exits when the suite that started it is gone.
import fs from 'node:fs';
import { createServer, type ApiServer } from '../api/server';
import { arenaLayout } from '../bench/arena';
import { loadConfig } from '../config';
import { createLogger } from '../logger';
import { Processor } from '../runtime/processor';
import { TARGETS_DIR_ENV, targetEntry, writeTarget } from './prometheus';

/**
 * A child whose suite died (killed, or crashed without stopping it) is adopted by another process: it
 * exits then, instead of running on as an orphan that competes with every later run for the CPU.
 */
function exitWhenOrphaned(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      process.stderr.write(`fault child: the suite (pid ${parent}) is gone; exiting\n`);
      process.exit(1);
    }
  }, 1000).unref();
}

async function main(): Promise<void> {
  exitWhenOrphaned();
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const layout = arenaLayout(process.env.FAULT_PREFIX!, Number(process.env.FAULT_PARTITIONS));
  const processor = new Processor({
    config,
    topology: {
      topics: layout.topics,
      stages: [layout.stageOf(layout.appointments), layout.stageOf(layout.conversions)],
    },
    log,
    settingsTopic: layout.settingsTopic,
  });
  let server: ApiServer | undefined;
  let target: string | undefined;
  const targetsDir = process.env[TARGETS_DIR_ENV];
  if (targetsDir) {
    // Listening before the stages start: Prometheus sees the instance (not yet ready) at once.
    server = createServer({ log, registry: processor.metrics, health: processor.health });
    const port = await server.listen(0, '127.0.0.1');
    target = writeTarget(targetsDir, process.pid, targetEntry(port, { arena: process.env.FAULT_PREFIX! }));
  }
  const stop = (signal: string) => {
    const at = Date.now();
    if (target) fs.rmSync(target, { force: true });
    Promise.all([server?.close(), processor.stop()]).then(
      () => {
        process.stdout.write(`STOPPED ${signal} ${Date.now() - at}\n`);
        process.exit(0);
      },
      (err: unknown) => {
        process.stderr.write(`stop failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  await processor.start();
  process.stdout.write('READY\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`fault child failed: ${String(err)}\n`);
  process.exit(1);
});
