// Each command's arguments come from one option table: strict parsing refuses an unknown option, a
// missing value or a stray argument with one line naming it (exit 2), and usage and --help are written
// from the same table, so every option a command reads is one its help shows.
import { defineCommand, wholeNumber } from '../../src/cli/args';
import { commands, main } from '../../src/cli/main';
import { KeyflowError } from '../../src/errors';

const seen: unknown[] = [];
const sample = defineCommand({
  name: 'sample',
  operands: 'list <stage>',
  summary: 'a command for the tests',
  options: {
    key: { type: 'string', value: 'K', doc: 'only this key' },
    json: { type: 'boolean', doc: 'as JSON' },
  },
  async run(parsed) {
    seen.push(parsed);
    return 0;
  },
});

async function refusal(args: string[]): Promise<string> {
  const err = await sample.run(args).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeyflowError);
  expect(err).toMatchObject({ code: 'USAGE' });
  return (err as Error).message;
}

test('values and positionals arrive typed from the table, in both --name value and --name=value form', async () => {
  seen.length = 0;
  await sample.run(['list', 'appointments', '--key', 'k1', '--json']);
  await sample.run(['list', '--key=k2', 'x']);
  expect(seen).toEqual([
    { values: { key: 'k1', json: true }, positionals: ['list', 'appointments'] },
    { values: { key: 'k2' }, positionals: ['list', 'x'] },
  ]);
});

test('usage and help are written from the option table', () => {
  expect(sample.usage).toBe('sample list <stage> [--key K] [--json]');
  expect(sample.help().split('\n')).toEqual([
    'Usage: keyflow sample list <stage> [--key K] [--json]',
    '  a command for the tests',
    '',
    'Options:',
    '  --key K     only this key',
    '  --json      as JSON',
    '  --help, -h  show this help',
  ]);
});

test.each([
  [['--frob'], 'unknown option --frob'],
  [['-k', 'x'], 'unknown option -k'],
  [['list', 'x', '--key'], '--key needs a value'],
  [['list', 'x', '--key', '--json'], '--key needs a value'],
  [['--json=yes'], '--json takes no value'],
])('%p is refused with one line naming it and the usage', async (args, reason) => {
  const message = await refusal(args);
  expect(message).toBe(`${reason}; usage: keyflow sample list <stage> [--key K] [--json]`);
  expect(message).not.toContain('\n');
});

test('a command without operands refuses a stray argument by name', async () => {
  const topology = commands.topology!;
  await expect(topology.run(['extra'])).rejects.toMatchObject({
    code: 'USAGE',
    message: 'unexpected argument "extra"; usage: keyflow topology [--mermaid]',
  });
});

test('wholeNumber names the option and the bound', () => {
  expect(wholeNumber(undefined, 'limit')).toBeUndefined();
  expect(wholeNumber('12', 'limit')).toBe(12);
  expect(() => wholeNumber('0', 'shards')).toThrow('--shards must be a whole number ≥ 1, got "0"');
  expect(() => wholeNumber('2.5', 'limit')).toThrow('--limit must be a whole number ≥ 1, got "2.5"');
  expect(() => wholeNumber(' ', 'limit')).toThrow('--limit must be a whole number');
});

describe('keyflow <command> as main() runs it', () => {
  let stdout = '';
  let stderr = '';
  beforeEach(() => {
    stdout = '';
    stderr = '';
    jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
    jest.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
    process.exitCode = undefined;
  });
  afterEach(() => {
    jest.restoreAllMocks();
    process.exitCode = undefined;
  });

  test('an unknown option exits 2 with one line on stderr', async () => {
    await main(['topology', '--dot']);
    expect(process.exitCode).toBe(2);
    expect(stderr).toBe('keyflow: unknown option --dot; usage: keyflow topology [--mermaid]\n');
    expect(stdout).toBe('');
  });

  test('every command’s --help lists each of its options', async () => {
    for (const [name, cmd] of Object.entries(commands)) {
      stdout = '';
      await main([name, '--help']);
      expect(stdout).toBe(`${cmd.help()}\n`);
      expect(stdout.startsWith(`Usage: keyflow ${cmd.usage}\n`)).toBe(true);
      for (const option of cmd.usage.match(/--[a-z]+/g) ?? []) expect(stdout).toContain(`  ${option}`);
    }
    expect(process.exitCode).toBeUndefined();
  });
});
