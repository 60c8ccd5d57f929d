// `keyflow services up|down|status`: the local stack of real services, without Docker.
import { loadConfig } from '../config';
import { down, stackContext, status, up } from '../services/stack';
import { defineCommand, usageError } from './args';

const progress = (line: string) => process.stderr.write(`[services] ${line}\n`);

export const servicesCommand = defineCommand({
  name: 'services',
  operands: 'up|down|status',
  summary: 'start, stop or show the local Kafka, schema registry and Mongo-protocol server',
  options: {},
  async run({ positionals }) {
    if (positionals.length !== 1) throw usageError(servicesCommand);
    const cfg = loadConfig(process.env, { require: [] });
    const ctx = stackContext(cfg, progress);
    switch (positionals[0]) {
      case 'up': {
        const env = await up(ctx);
        for (const [k, v] of Object.entries(env)) process.stdout.write(`${k}=${v}\n`);
        return 0;
      }
      case 'down': {
        const stopped = await down(ctx);
        progress(stopped.length ? `stopped ${stopped.join(', ')}` : 'nothing of ours was running');
        return 0;
      }
      case 'status': {
        const rows = await status(ctx);
        for (const r of rows) {
          const state = r.ready ? 'ready' : r.alive ? 'starting or unhealthy' : 'stopped';
          process.stdout.write(
            `${r.name.padEnd(9)} ${state.padEnd(22)} port ${r.port}${r.pid ? ` pid ${r.pid}` : ''}\n`,
          );
        }
        return rows.every((r) => r.ready) ? 0 : 3;
      }
      default:
        throw usageError(servicesCommand);
    }
  },
});
