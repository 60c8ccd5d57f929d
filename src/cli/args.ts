// Tiny argument helpers shared by the subcommands: `--name value`, `--name=value` and bare flags.
import { KeyflowError } from '../errors';

export function flag(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === name) {
      const v = args[i + 1];
      if (v === undefined || v.startsWith('--')) {
        throw new KeyflowError('USAGE', `${name} needs a value`);
      }
      return v;
    }
    if (a.startsWith(`${name}=`)) return a.slice(name.length + 1);
  }
  return undefined;
}

export function has(args: string[], name: string): boolean {
  return args.includes(name);
}

/** Positional arguments: everything that is neither a flag nor a flag's value. */
export function positionals(args: string[], valued: string[] = []): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (valued.includes(a)) i++;
    else if (!a.startsWith('--')) out.push(a);
  }
  return out;
}

export function intFlag(args: string[], name: string, min = 1): number | undefined {
  const v = flag(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new KeyflowError('USAGE', `${name} must be a whole number ≥ ${min}, got "${v}"`);
  return n;
}
