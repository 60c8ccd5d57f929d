// `keyflow faults <scenario|all>` (`npm run faults -- all`): fault injection on the local stack.
import { createLogger } from '../logger';
import { KeyflowError } from '../errors';
import { runFaults } from '../faults/run';
import { SCENARIOS } from '../faults/scenarios';
import { defineCommand, usageError } from './args';

export const faultsCommand = defineCommand({
  name: 'faults',
  operands: '<scenario|quick|all>',
  summary: `inject faults into the local stack and check the tables exactly (${SCENARIOS.map((s) => s.name).join(', ')})`,
  options: {
    quick: {
      type: 'boolean',
      doc: 'run the CI-sized version of the scenarios (small event sets, fewer faults)',
    },
    keep: {
      type: 'boolean',
      doc: "leave each scenario's topics, groups and database in place for inspection",
    },
    guarantee: {
      type: 'string',
      value: 'mode',
      doc: "the processors' delivery guarantee: exactly-once (default) or at-least-once, for comparison",
    },
    results: {
      type: 'string',
      value: 'dir',
      doc: 'write latest.json and report.md here (default faults/results)',
    },
  },
  async run({ positionals, values }) {
    const [what, ...extra] = positionals;
    if (!what)
      throw new KeyflowError(
        'USAGE',
        `name a scenario, \`quick\` (the CI-sized subset) or \`all\`: ${SCENARIOS.map((s) => s.name).join(', ')}`,
      );
    if (extra.length) throw usageError(faultsCommand, `one scenario at a time, got "${extra[0]}" too`);
    return runFaults({
      what,
      log: createLogger(process.env.LOG_LEVEL ?? 'error'),
      out: (line) => process.stdout.write(`${line}\n`),
      resultsDir: values.results,
      quick: values.quick === true || what === 'quick',
      keep: values.keep === true,
      guarantee: values.guarantee,
    });
  },
});
