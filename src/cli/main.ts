// The `keyflow` command. Each subcommand is a thin call into the rooms that do the work.
import { KeyflowError } from '../errors';
import type { Command } from './args';
import { benchCommand } from './bench';
import { changesCommand } from './changes';
import { customersCommand } from './customers';
import { demoCommand } from './demo';
import { dlqCommand } from './dlq';
import { faultsCommand } from './faults';
import { figuresCommand } from './figures';
import { replayCommand } from './replay';
import { schemasCommand } from './schemas';
import { servicesCommand } from './services';
import { startCommand } from './start';
import { topologyCommand } from './topology';

export const commands: Record<string, Command> = {
  services: servicesCommand,
  start: startCommand,
  topology: topologyCommand,
  schemas: schemasCommand,
  dlq: dlqCommand,
  replay: replayCommand,
  changes: changesCommand,
  customers: customersCommand,
  demo: demoCommand,
  bench: benchCommand,
  faults: faultsCommand,
  figures: figuresCommand,
};

export function helpText(): string {
  const lines = [
    'keyflow - keyed stream processing on Apache Kafka',
    '',
    'Usage: keyflow <command> [options]',
    '',
    'Commands:',
  ];
  // Operands only: options belong to each command's own --help, which lists every one of them.
  const heads = Object.values(commands).map((c) => [c.synopsis, c.summary] as const);
  const width = Math.max(...heads.map(([h]) => h.length));
  for (const [head, summary] of heads) lines.push(`  ${head.padEnd(width)}  ${summary}`);
  lines.push(
    '',
    'Run `keyflow <command> --help` for its options.',
    'Settings come from the environment, then .keyflow/services.env; see docs/operating.md, "Settings".',
  );
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${helpText()}\n`);
    process.exitCode = name === undefined ? 2 : 0;
    return;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`keyflow: unknown command "${name}"; run \`keyflow --help\` for the list\n`);
    process.exitCode = 2;
    return;
  }
  // Help wins over anything else on the line, so `--help` works even beside a mistyped option.
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${cmd.help()}\n`);
    return;
  }
  try {
    process.exitCode = await cmd.run(rest);
  } catch (err) {
    if (err instanceof KeyflowError) {
      process.stderr.write(`keyflow: ${err.message}\n`);
      process.exitCode = err.code === 'USAGE' ? 2 : 1;
      return;
    }
    throw err;
  }
}
