// A processor instance of its own for the fault suite: both flows' stages on the arena named by
// FAULT_PREFIX (FAULT_PARTITIONS partitions), settings from the environment. Prints READY once it
// runs; drains and exits 0 on SIGTERM, so the suite can kill it, stop it, or let it leave.
import { arenaLayout } from '../bench/arena';
import { loadConfig } from '../config';
import { createLogger } from '../logger';
import { Processor } from '../runtime/processor';

async function main(): Promise<void> {
  const config = loadConfig();
  const layout = arenaLayout(process.env.FAULT_PREFIX!, Number(process.env.FAULT_PARTITIONS));
  const processor = new Processor({
    config,
    topology: {
      topics: layout.topics,
      stages: [layout.stageOf(layout.appointments), layout.stageOf(layout.conversions)],
    },
    log: createLogger(config.logLevel),
    settingsTopic: layout.settingsTopic,
  });
  const stop = (signal: string) => {
    const at = Date.now();
    processor.stop().then(
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
