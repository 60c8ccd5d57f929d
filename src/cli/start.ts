// `keyflow start`: every stage of the topology plus the HTTP server, until SIGTERM or SIGINT.
import { startApp, untilSignal } from '../app/main';
import { loadConfig } from '../config';
import { commandLogger } from '../logger';
import { defineCommand } from './args';

export const startCommand = defineCommand({
  name: 'start',
  summary: 'run the stages (all by default) and the HTTP server until SIGTERM/SIGINT',
  options: {
    stages: { type: 'string', value: 'a,b', doc: 'run only these stages (comma-separated names)' },
  },
  async run({ values }) {
    const config = loadConfig();
    // Only the token's hash stays in the process: child processes never inherit the token.
    delete process.env.KEYFLOW_ADMIN_TOKEN;
    const { log } = commandLogger(process.env, config, {
      level: config.logLevel,
      fallback: { to: 'stdout' },
    });
    const stages = values.stages?.split(',').filter(Boolean);
    const app = await startApp(config, log, { stages });
    await untilSignal(log);
    await app.stop();
    return 0;
  },
});
