// What the bench's stand-alone scripts (`npx tsx src/bench/<script>.ts`) share: reading a whole-number
// flag and running a main that returns an exit status.

/** `--<name> <n>`: a whole number of at least `min`, or `fallback` when the flag is absent. */
export function wholeFlag(args: string[], name: string, fallback: number, min = 0): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`--${name} wants a whole number${min > 0 ? ` ≥ ${min}` : ''}`);
  }
  return value;
}

/** Runs `main` with the command line and exits with its status; a failure prints its stack and exits 1. */
export function runScript(main: (args: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
