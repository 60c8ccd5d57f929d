// A subcommand's arguments as one table: `node:util`'s strict parseArgs reads them, and the same table
// writes the usage line and `--help`, so the two cannot drift. Mistakes are USAGE errors of one line.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { KeyflowError } from '../errors';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** The value's placeholder in usage and help (`N`, `a,b`); string options only. */
  value?: string;
  /** May be given more than once (string options): the run receives every value, in order. */
  multiple?: boolean;
  doc: string;
}

export type OptionTable = Record<string, OptionSpec>;

/** What a command's run receives: options typed from its table, and the positionals in order. */
export interface Parsed<O extends OptionTable> {
  values: {
    [K in keyof O]?: O[K]['type'] extends 'string'
      ? O[K]['multiple'] extends true
        ? string[]
        : string
      : boolean;
  };
  positionals: string[];
}

export interface CommandSpec<O extends OptionTable> {
  name: string;
  /** Positional arguments as usage shows them (`list|replay <stage>`); none accepted when absent. */
  operands?: string;
  summary: string;
  options: O;
  /** Extra lines for `--help` after the options (an example, a rule between options). */
  notes?: string[];
  run(parsed: Parsed<O>): Promise<number>;
}

export interface Command {
  name: string;
  summary: string;
  /** `dlq list|replay <stage>`: the name and operands, for the list of commands. */
  synopsis: string;
  /** `dlq list|replay <stage> [--key K] [--json]`, from the table. */
  usage: string;
  help(): string;
  run(args: string[]): Promise<number>;
}

function optionUsage(name: string, spec: OptionSpec): string {
  return spec.type === 'string' ? `--${name} ${spec.value ?? 'value'}` : `--${name}`;
}

export function usageOf(spec: Pick<CommandSpec<OptionTable>, 'name' | 'operands' | 'options'>): string {
  const opts = Object.entries(spec.options).map(([n, o]) => `[${optionUsage(n, o)}]`);
  return [spec.name, spec.operands, ...opts].filter(Boolean).join(' ');
}

export function helpOf(spec: CommandSpec<OptionTable>): string {
  const lines = [`Usage: keyflow ${usageOf(spec)}`, `  ${spec.summary}`];
  const rows = Object.entries(spec.options).map(([n, o]) => [optionUsage(n, o), o.doc] as const);
  rows.push(['--help, -h', 'show this help']);
  const width = Math.max(...rows.map(([u]) => u.length));
  lines.push('', 'Options:', ...rows.map(([u, doc]) => `  ${u.padEnd(width)}  ${doc}`));
  if (spec.notes?.length) lines.push('', ...spec.notes);
  return lines.join('\n');
}

/**
 * parseArgs' own messages are long and tell a shell user to use `--`; this names the one offending
 * argument instead, found by a lenient second pass over the same arguments.
 */
function explain(args: string[], config: ParseArgsOptionsConfig, positionalsAllowed: boolean): string {
  const { tokens } = parseArgs({
    args,
    options: config,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const t of tokens) {
    if (t.kind === 'positional' && !positionalsAllowed) return `unexpected argument "${t.value}"`;
    if (t.kind !== 'option') continue;
    const known = config[t.name];
    if (!known || t.rawName !== `--${t.name}`) return `unknown option ${t.rawName}`;
    if (known.type === 'string' && (t.value === undefined || t.value.startsWith('-')) && !t.inlineValue) {
      return `${t.rawName} needs a value`;
    }
    if (known.type === 'boolean' && t.inlineValue) return `${t.rawName} takes no value`;
  }
  return 'could not read the arguments';
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

export function defineCommand<const O extends OptionTable>(spec: CommandSpec<O>): Command {
  const config: ParseArgsOptionsConfig = Object.fromEntries(
    Object.entries(spec.options).map(([n, o]) => [n, { type: o.type, multiple: o.multiple === true }]),
  );
  const usage = usageOf(spec);
  return {
    name: spec.name,
    summary: spec.summary,
    synopsis: [spec.name, spec.operands].filter(Boolean).join(' '),
    usage,
    help: () => helpOf(spec),
    async run(args) {
      let parsed: ReturnType<typeof parseArgs>;
      try {
        parsed = parseArgs({ args, options: config, strict: true, allowPositionals: !!spec.operands });
      } catch (err) {
        if (!isParseArgsError(err)) throw err;
        throw new KeyflowError(
          'USAGE',
          `${explain(args, config, !!spec.operands)}; usage: keyflow ${usage}`,
          {
            cause: err,
          },
        );
      }
      return spec.run({ values: parsed.values as Parsed<O>['values'], positionals: parsed.positionals });
    },
  };
}

/** A USAGE error that ends with the command's usage line. */
export function usageError(command: { usage: string }, message?: string): KeyflowError {
  const head = message ? `${message}; usage` : 'usage';
  return new KeyflowError('USAGE', `${head}: keyflow ${command.usage}`);
}

/** A whole-number option: undefined when absent, a USAGE error naming it when not a whole number ≥ min. */
export function wholeNumber(value: string | undefined, name: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || value.trim() === '') {
    throw new KeyflowError('USAGE', `--${name} must be a whole number ≥ ${min}, got "${value}"`);
  }
  return n;
}
