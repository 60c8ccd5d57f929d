// `keyflow bench <scenario|quick|all>` (`npm run bench -- quick`): the benchmark and its baselines.
import { runBench } from '../bench/run';
import { createLogger } from '../logger';
import { KeyflowError } from '../errors';
import type { Command } from './main';

export const benchCommand: Command = {
  usage: 'bench <scenario|quick|all>',
  summary: 'measure the pipeline against same-run baselines; writes bench/results/latest.json and a report',
  async run(args) {
    const what = args.find((a) => !a.startsWith('-'));
    if (!what) throw new KeyflowError('USAGE', 'name a scenario, `quick` or `all` (see bench/scenarios/)');
    // The engine logs only errors here: a retry warning per injected failure would bury the progress bar.
    const log = createLogger(process.env.LOG_LEVEL ?? 'error');
    return runBench({
      what,
      log,
      out: (line) => process.stdout.write(`${line}\n`),
      terminal: process.stdout,
    });
  },
};
