// `keyflow bench <scenario|quick|all>` (`npm run bench -- quick`): the benchmark and its baselines.
import { runBench } from '../bench/run';
import { runScaling } from '../bench/scaling';
import { createLogger } from '../logger';
import { KeyflowError } from '../errors';
import { defineCommand, usageError } from './args';

export const benchCommand = defineCommand({
  name: 'bench',
  operands: '<scenario|quick|all|scaling>',
  summary: 'measure the pipeline against same-run baselines; writes bench/results/latest.json and a report',
  options: {},
  async run({ positionals }) {
    const [what, ...extra] = positionals;
    if (!what)
      throw new KeyflowError('USAGE', 'name a scenario, `quick`, `all` or `scaling` (see bench/scenarios/)');
    if (extra.length) throw usageError(benchCommand, `one scenario at a time, got "${extra[0]}" too`);
    // The engine logs only errors here: a retry warning per injected failure would bury the progress bar.
    const log = createLogger(process.env.LOG_LEVEL ?? 'error');
    // The scaling curve runs processor children instead of contestants: a mode of its own.
    if (what === 'scaling') return runScaling({ log, out: (line) => process.stdout.write(`${line}\n`) });
    return runBench({
      what,
      log,
      out: (line) => process.stdout.write(`${line}\n`),
      terminal: process.stdout,
    });
  },
});
