// `keyflow services up|down|status`: the local stack of real services, without Docker.
import { loadConfig } from '../config';
import { KeyflowError } from '../errors';
import { down, stackContext, status, up } from '../services/stack';
import { statusTable } from '../services/status';
import type { Command } from './main';

const progress = (line: string) => process.stderr.write(`[services] ${line}\n`);

export const servicesCommand: Command = {
  usage: 'services up|down|status',
  summary: 'start, stop or show the local Kafka, schema registry and Mongo-protocol server',
  async run(args) {
    const cfg = loadConfig(process.env, { require: [] });
    const ctx = stackContext(cfg, progress);
    switch (args[0]) {
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
        for (const line of statusTable(rows)) process.stdout.write(`${line}\n`);
        return rows.every((r) => r.ready) ? 0 : 3;
      }
      default:
        throw new KeyflowError('USAGE', 'usage: keyflow services up|down|status', { retriable: false });
    }
  },
};
