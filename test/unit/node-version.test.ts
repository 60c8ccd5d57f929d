// The project brings its own Node 24 (package.json's node-<os>-<cpu> optional dependencies), and npm scripts
// put node_modules/.bin first on PATH: under `npm test` or `npx jest`, the tests run on it even where the
// system Node is older.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  engines: { node: string };
  optionalDependencies: Record<string, string>;
};

function parts(v: string): number[] {
  return v
    .replace(/^[^0-9]*/, '')
    .split('.')
    .map(Number);
}

function atLeast(have: number[], want: number[]): boolean {
  for (let i = 0; i < want.length; i++) {
    const h = have[i] ?? 0;
    const w = want[i] ?? 0;
    if (h !== w) return h > w;
  }
  return true;
}

test('the tests run on a Node that meets the engines range', () => {
  expect(pkg.engines.node).toMatch(/^>=24\.\d+$/);
  expect(atLeast(parts(process.versions.node), parts(pkg.engines.node))).toBe(true);
});

test('every bundled Node binary is one version, and that version meets the engines range', () => {
  const versions = new Set(
    Object.entries(pkg.optionalDependencies)
      .filter(([name]) => /^node-[a-z0-9]+-[a-z0-9]+$/.test(name))
      .map(([, v]) => v),
  );
  expect(versions.size).toBe(1);
  const [bundled = ''] = [...versions];
  expect(atLeast(parts(bundled), parts(pkg.engines.node))).toBe(true);
});
