// `keyflow services up|down|status|reset`: the local stack of real services, without Docker.
import readline from 'node:readline/promises';
import { loadConfig } from '../config';
import { KeyflowError } from '../errors';
import { dataRoot, down, reset, stackContext, status, up } from '../services/stack';
import { dirBytes, formatBytes, statusTable } from '../services/status';
import { defineCommand, usageError } from './args';

const progress = (line: string) => process.stderr.write(`[services] ${line}\n`);

/** Deleting data needs a yes: from --yes, or typed at a terminal. Without either there is no one to ask. */
export function resetConsent(opts: { yes: boolean; interactive: boolean }): 'proceed' | 'ask' | 'refuse' {
  if (opts.yes) return 'proceed';
  return opts.interactive ? 'ask' : 'refuse';
}

async function confirm(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export const servicesCommand = defineCommand({
  name: 'services',
  operands: 'up|down|status|reset',
  summary: 'start, stop, show or wipe the local Kafka, schema registry and Mongo-protocol server',
  options: {
    yes: { type: 'boolean', doc: 'reset: delete without asking' },
  },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw usageError(servicesCommand);
    const [sub] = positionals;
    if (values.yes && sub !== 'reset') throw usageError(servicesCommand);
    const cfg = loadConfig(process.env, { require: [] });
    const ctx = stackContext(cfg, progress);
    switch (sub) {
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
      case 'reset': {
        const target = `${dataRoot(ctx)} (${formatBytes(dirBytes(dataRoot(ctx)))})`;
        const consent = resetConsent({
          yes: values.yes === true,
          interactive: process.stdin.isTTY === true && process.stderr.isTTY === true,
        });
        if (consent === 'refuse') {
          throw new KeyflowError(
            'USAGE',
            `services reset stops the local stack and deletes ${target}; not a terminal to ask on, so pass --yes to confirm`,
            { retriable: false },
          );
        }
        if (consent === 'ask' && !(await confirm(`Stop the local stack and delete ${target}? [y/N] `))) {
          progress('reset cancelled; nothing changed');
          return 1;
        }
        const { stopped, freedBytes } = await reset(ctx);
        progress(
          `${stopped.length ? `stopped ${stopped.join(', ')}; ` : ''}deleted ${dataRoot(ctx)} (${formatBytes(freedBytes)})`,
        );
        return 0;
      }
      default:
        throw usageError(servicesCommand);
    }
  },
});
