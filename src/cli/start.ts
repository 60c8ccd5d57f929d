// `keyflow start`: every stage of the topology plus the HTTP server, until SIGTERM or SIGINT.
import { startApp, untilSignal } from '../app/main';
import { loadConfig } from '../config';
import { commandLogger } from '../logger';
import type { Command } from './main';
import { flag } from './args';

export const startCommand: Command = {
  usage: 'start [--stages a,b]',
  summary: 'run the stages (all by default) and the HTTP server until SIGTERM/SIGINT',
  async run(args) {
    const config = loadConfig();
    const { log } = commandLogger(process.env, config, {
      level: config.logLevel,
      fallback: { to: 'stdout' },
    });
    const stages = flag(args, '--stages')?.split(',').filter(Boolean);
    const app = await startApp(config, log, { stages });
    await untilSignal(log);
    await app.stop();
    return 0;
  },
};
