// `keyflow demo [--once]` (`npm run demo`): the main job on the local stack, end to end.
import { runDemo } from '../app/demo/run';
import { createLogger } from '../logger';
import { has } from './args';
import type { Command } from './main';

export const demoCommand: Command = {
  usage: 'demo [--once]',
  summary: 'start the local stack if needed, run the processor on sample traffic, print what happened',
  async run(args) {
    // The demo's own report is the output; the processor logs only warnings unless LOG_LEVEL says more.
    const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
    return runDemo({ once: has(args, '--once'), log, out: (line) => process.stdout.write(`${line}\n`) });
  },
};
