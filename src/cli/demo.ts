// `keyflow demo [--once]` (`npm run demo`): the main job on the local stack, end to end.
import path from 'node:path';
import { runDemo } from '../app/demo/run';
import { loadConfig } from '../config';
import { commandLogger } from '../logger';
import { defineCommand } from './args';

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'start the local stack if needed, run the processor on sample traffic, print what happened',
  options: {
    once: {
      type: 'boolean',
      doc: 'exit after the report (status 1 if anything disagreed) instead of serving',
    },
  },
  async run({ values }) {
    // The terminal shows the demo's own report; the processor's log goes to a file it names, unless
    // LOG_LEVEL is set (then to stderr, as the person asked to watch it) or KEYFLOW_LOG_FILE says where.
    const settings = loadConfig(process.env, { require: [] });
    const file = path.join(settings.stateDir, 'logs', 'demo.log');
    const { log, destination } = commandLogger(process.env, settings, {
      level: 'info',
      fallback: { to: 'file', path: file },
    });
    const logFile = destination.to === 'file' ? path.relative(process.cwd(), destination.path) : undefined;
    const out = (line: string) => process.stdout.write(`${line}\n`);
    if (logFile) out(`Logs of this run: ${logFile} (set LOG_LEVEL to see them here instead)`);
    return runDemo({ once: values.once === true, log, out, logFile, terminal: process.stdout });
  },
});
