// The docs against the code: every command, flag, setting and alert the docs name exists, and every one
// that exists is documented; the tutorial's code is the example's code; links land on real headings; the
// figures block markers are in place. (The error table has its own test: test/unit/errors.test.ts.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { commands } from '../../src/cli/main';
import { ERROR_CODES } from '../../src/errors';
import { faultsBlock, FIGURE_BLOCKS, queriesBlock, renderFigures } from '../../src/cli/figures';
import { settings } from '../../src/config/schema';
import { SCENARIOS } from '../../src/faults/scenarios';

const root = path.join(__dirname, '..', '..');
const read = (rel: string) => fs.readFileSync(path.join(root, rel), 'utf8');
const DOCS = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
  f.endsWith('.md'),
);
const text = Object.fromEntries(DOCS.map((f) => [f, read(f)]));
const operating = text['docs/operating.md']!;

/** The body of a `## title` section, up to the next `## ` heading. */
function section(doc: string, title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`no "## ${title}" section`);
  const next = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, next < 0 ? undefined : next);
}

/** Inline code spans and fenced code lines: where the docs name commands and flags. */
function codeOf(doc: string): string[] {
  const out: string[] = [];
  let fenced = false;
  for (const line of doc.split('\n')) {
    if (line.startsWith('```')) {
      fenced = !fenced;
      continue;
    }
    if (fenced) out.push(line);
    else out.push(...[...line.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
  }
  return out;
}

// ---- commands and flags -------------------------------------------------------------------------

/** What the CLI's option tables say, per command: options, and the words its first operand may be. */
const BENCH_SCENARIOS = fs
  .readdirSync(path.join(root, 'bench', 'scenarios'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => (JSON.parse(read(`bench/scenarios/${f}`)) as { name: string }).name);
const SCENARIO_NAMES: Record<string, string[]> = {
  bench: BENCH_SCENARIOS,
  faults: SCENARIOS.map((s) => s.name),
};
const cli = Object.fromEntries(
  Object.values(commands).map((c) => {
    const options = new Set([...c.usage.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!));
    const stringOptions = new Set([...c.usage.matchAll(/\[--([a-z][a-z-]*) [^\]]+\]/g)].map((m) => m[1]!));
    const first = c.synopsis.split(' ')[1];
    const words = first?.includes('|') || (first && !first.startsWith('<')) ? first : undefined;
    const alternatives = words
      ?.replace(/[<>]/g, '')
      .split('|')
      .flatMap((w) => (w === 'scenario' ? (SCENARIO_NAMES[c.name] ?? []) : [w]));
    return [c.name, { options, stringOptions, alternatives }];
  }),
);

/** npm scripts that are the CLI: `npm run bench -- quick` is `keyflow bench quick`. */
const NPM_ALIASES: Record<string, string> = {
  services: 'services',
  demo: 'demo',
  bench: 'bench',
  faults: 'faults',
  start: 'start',
};

interface Invocation {
  file: string;
  command: string;
  args: string[];
}

function invocations(): Invocation[] {
  const out: Invocation[] = [];
  for (const file of DOCS) {
    for (const code of codeOf(text[file]!)) {
      for (const m of code.matchAll(/(?:^|[\s(;&|])keyflow ([a-z][a-z-]*)([^;&#]*)/g)) {
        out.push({ file, command: m[1]!, args: m[2]!.trim().split(/\s+/).filter(Boolean) });
      }
      for (const m of code.matchAll(/npm run ([a-z]+)(?: -- ([^;&#]*))?/g)) {
        const script = m[1]!;
        const rest = (m[2] ?? '').trim().split(/\s+/).filter(Boolean);
        if (script === 'keyflow' && rest[0]) out.push({ file, command: rest[0], args: rest.slice(1) });
        else if (NPM_ALIASES[script]) out.push({ file, command: NPM_ALIASES[script], args: rest });
      }
    }
  }
  return out;
}

/** What is wrong with one invocation as the docs write it, checked against the option tables. */
function problems(inv: Invocation): string[] {
  const spec = cli[inv.command];
  if (!spec) return [`${inv.file}: \`keyflow ${inv.command}\` is not a command`];
  const out: string[] = [];
  const tokens = inv.args.map((t) => t.replace(/^[[(]+|[\])]+$/g, '')).filter((t) => t && t !== '\\|');
  let first = true;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.startsWith('--')) {
      const name = t.slice(2).split('=')[0]!;
      if (name === 'help') continue;
      // An example of the refusal itself (`keyflow: unknown option --dot`) names a wrong flag on purpose.
      const refused = text[inv.file]!.includes(`keyflow: unknown option --${name}`);
      if (!spec.options.has(name) && !refused)
        out.push(`${inv.file}: \`keyflow ${inv.command}\` has no option --${name}`);
      if (spec.stringOptions.has(name) && !t.includes('=')) i++;
      continue;
    }
    if (t === '-h' || t === '--' || !first) continue;
    first = false;
    // The first operand: a word of the command's table, or a placeholder (`<stage>`, `…`).
    if (!spec.alternatives || /^[<…]|^\.\.\.|^[A-Z]/.test(t)) continue;
    for (const word of t.split(/\\?\|/).filter(Boolean)) {
      if (!spec.alternatives.includes(word)) {
        out.push(
          `${inv.file}: \`keyflow ${inv.command} ${word}\`: "${word}" is not one of ${spec.alternatives.join(', ')}`,
        );
      }
    }
  }
  return out;
}

/** Flags written alone (`--keep`) that belong to tools other than keyflow, and where. */
const FOREIGN_FLAGS: Record<string, string> = {
  config: 'secantusd-py, in docs/local-stack.md',
};

test('every command, operand and flag the docs name exists in the CLI', () => {
  const found = invocations();
  expect(found.length).toBeGreaterThan(30);
  expect(found.flatMap(problems)).toEqual([]);

  const known = new Set(Object.values(cli).flatMap((c) => [...c.options]));
  const loose = DOCS.flatMap((file) =>
    codeOf(text[file]!)
      .filter((code) => /^--[a-z][a-z-]*(\s|$)/.test(code))
      .map((code) => [file, code.slice(2).split(/\s/)[0]!] as const),
  ).filter(([, name]) => name !== 'help' && !known.has(name) && !FOREIGN_FLAGS[name]);
  expect(loose.map(([file, name]) => `${file}: --${name} is no option of any command`)).toEqual([]);
});

test('every command, each of its options and operand words, is in the commands table', () => {
  const table = section(operating, 'Commands');
  const rows = table.split('\n').filter((l) => l.startsWith('| `keyflow '));
  const missing: string[] = [];
  for (const [name, spec] of Object.entries(cli)) {
    const mine = rows.filter(
      (r) => r.startsWith(`| \`keyflow ${name} `) || r.startsWith(`| \`keyflow ${name}\``),
    );
    if (mine.length === 0) {
      missing.push(`keyflow ${name}`);
      continue;
    }
    const all = mine.join('\n');
    for (const o of spec.options) if (!all.includes(`--${o}`)) missing.push(`keyflow ${name} --${o}`);
    for (const w of spec.alternatives ?? []) {
      if (SCENARIO_NAMES[name]?.includes(w)) continue; // scenarios are listed in the benchmarks doc
      if (!new RegExp(`[\\s|<]${w}[\\s|>\\\\]`).test(all)) missing.push(`keyflow ${name} ${w}`);
    }
  }
  expect(missing).toEqual([]);
});

test('every fault scenario and bench scenario the CLI runs is named in the benchmarks doc', () => {
  const doc = text['docs/benchmarks-and-faults.md']!;
  const missing = SCENARIOS.map((s) => s.name).filter((n) => !doc.includes(`\`${n}\``));
  expect(missing).toEqual([]);
});

// ---- settings -----------------------------------------------------------------------------------

/** A setting's default as the docs write it, from the schema itself. */
function documentedDefault(schema: { safeParse(v: unknown): { success: boolean; data?: unknown } }): string {
  const r = schema.safeParse(undefined);
  if (!r.success) return 'required';
  if (r.data === undefined || (Array.isArray(r.data) && r.data.length === 0)) return 'none';
  if (r.data === '') return 'empty';
  return `\`${String(r.data).replace(os.homedir(), '~')}\``;
}

test('the settings table lists every setting of the schema, with its default, and nothing else', () => {
  const rows = [
    ...section(operating, 'Settings').matchAll(/^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*([^|]+?)\s*\|/gm),
  ];
  const documented = Object.fromEntries(rows.map((m) => [m[1]!, m[2]!]));
  const expected = Object.fromEntries(
    Object.values(settings).map((s) => [s.env, documentedDefault(s.schema as never)]),
  );
  expect(rows.length).toBe(Object.keys(documented).length); // no setting twice
  expect(documented).toEqual(expected);
});

test('every KEYFLOW_ variable named anywhere in the docs is a setting', () => {
  const envs = new Set(Object.values(settings).map((s) => s.env));
  const unknown = DOCS.flatMap((file) =>
    [...text[file]!.matchAll(/\bKEYFLOW_[A-Z0-9_]*[A-Z0-9]\b/g)]
      .map((m) => m[0])
      .filter((name) => !envs.has(name))
      .map((name) => `${file}: ${name}`),
  );
  expect(unknown).toEqual([]);
});

// ---- dead-letter codes --------------------------------------------------------------------------

test("the publishing guide's dead-letter codes are error codes the engine has", () => {
  const table = section(text['docs/publishing.md']!, 'What a bad record becomes');
  const codes = [...table.matchAll(/\|\s*`([A-Z_]+)`\s*\|\s*$/gm)].map((m) => m[1]!);
  expect(codes.length).toBeGreaterThan(5);
  expect(codes.filter((c) => !(c in ERROR_CODES))).toEqual([]);
});

// ---- alerts -------------------------------------------------------------------------------------

test('every alert in deploy/prometheus/alerts.yml has a runbook entry, and every entry an alert', () => {
  const alerts = [...read('deploy/prometheus/alerts.yml').matchAll(/^\s*- alert:\s*(\S+)/gm)].map(
    (m) => m[1]!,
  );
  expect(alerts.length).toBeGreaterThan(0);
  const runbook = section(operating, 'Alert runbook');
  const entries = runbook.split('\n### ').slice(1);
  const names = entries.map((e) => e.split('\n')[0]!.trim());
  expect([...names].sort()).toEqual([...alerts].sort());
  for (const e of entries) {
    for (const part of ['**What it means:**', '**Look first:**', '**Do:**']) {
      expect({ entry: e.split('\n')[0], has: e.includes(part) }).toEqual({
        entry: e.split('\n')[0],
        has: true,
      });
    }
  }
});

// ---- the tutorial -------------------------------------------------------------------------------

test("every code block of the tutorial is the example's code, verbatim", () => {
  const example = read('examples/lead-scores.ts');
  const blocks = [...text['docs/writing-a-stage.md']!.matchAll(/```ts\n([\s\S]*?)\n```/g)].map((m) => m[1]!);
  expect(blocks.length).toBeGreaterThanOrEqual(5);
  const stale = blocks
    .flatMap((b) => b.split(/\n\s*\n/))
    .filter((chunk) => !example.includes(chunk))
    .map((chunk) => chunk.split('\n')[0]);
  expect(stale).toEqual([]);
});

// ---- links --------------------------------------------------------------------------------------

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

test('every relative link lands on a file, and an anchor on one of its headings', () => {
  const broken: string[] = [];
  for (const file of DOCS) {
    for (const m of text[file]!.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const [rel, anchor] = target.split('#') as [string, string | undefined];
      const dest = rel ? path.join(path.dirname(file), rel) : file;
      if (!fs.existsSync(path.join(root, dest))) {
        broken.push(`${file}: ${target}`);
        continue;
      }
      if (anchor === undefined || !dest.endsWith('.md')) continue;
      const headings = [...read(dest).matchAll(/^#+ (.+)$/gm)].map((h) => slug(h[1]!));
      if (!headings.includes(anchor)) broken.push(`${file}: ${target}`);
    }
  }
  expect(broken).toEqual([]);
});

// ---- the figures --------------------------------------------------------------------------------

test('the benchmarks doc carries every figures block, and rendering replaces only between its markers', () => {
  const doc = text['docs/benchmarks-and-faults.md']!;
  for (const name of FIGURE_BLOCKS) {
    expect(doc).toContain(`<!-- figures:${name}:begin -->`);
    expect(doc).toContain(`<!-- figures:${name}:end -->`);
  }
  const once = renderFigures(doc, { faults: 'rendered faults' });
  expect(once).toContain('<!-- figures:faults:begin -->\n\nrendered faults\n\n<!-- figures:faults:end -->');
  expect(renderFigures(once, { faults: 'rendered faults' })).toBe(once);
  // Outside the faults block nothing moved; a block with no new results stays as it was.
  const cut = (s: string) => s.replace(/<!-- figures:faults:begin -->[\s\S]*<!-- figures:faults:end -->/, '');
  expect(cut(once)).toBe(cut(doc));
  expect(() => renderFigures('no markers here', {})).toThrow(/figures:bench:begin/);
});

test("a fault run renders as its verdict, the table and each scenario's notes, naming its source", () => {
  const row = {
    scenario: 'processor-sigkill',
    eventsIn: 10,
    effectsOut: 9,
    lost: 0,
    duplicates: 1,
    wrong: 0,
    stalled: 0,
    deadLettered: 0,
    restarts: 0,
    recoverMs: 1500,
    notes: ['kills at 1.5 s'],
    duplicateChanges: 0,
    missingChanges: 0,
  };
  const block = faultsBlock(
    {
      startedAt: '2026-12-06T22:17:22.421Z',
      durationMs: 85_000,
      machine: { cpus: 2, node: 'v20', mongoServer: 'mongo-java-server' },
      guarantee: 'exactly-once',
      scenarios: [row, { ...row, scenario: 'processor-sigterm', duplicates: 0 }],
      dashboard: [],
    },
    'faults/results/latest.json',
  );
  expect(block).toContain('`faults/results/latest.json`: the quick (CI-sized) scenarios');
  expect(block).toContain('mongo-java-server, processors in exactly-once mode._');
  expect(block).toContain('1 of 2 scenarios pass.');
  expect(block).toContain('| processor-sigkill | FAIL | 10 | 9 | 0 | 1 |');
  expect(block).toContain('- processor-sigterm: kills at 1.5 s');
});

test('a queries run renders each query with its ratio, bold above 2, and says how many are above', () => {
  const block = queriesBlock(
    {
      server: 'mongo-java-server at mongodb://127.0.0.1:27027/',
      startedAt: '2026-12-07T14:05:00.000Z',
      durationMs: 1_500_000,
      sizes: [1000, 1000000],
      preloadSeconds: { keyflow_provenance: [0.1, 137.8] },
      figures: [
        {
          collection: 'keyflow_provenance',
          query: 'provenance by event',
          ms: [1.2, 9000],
          runs: 3,
          ratio: 7500,
        },
        { collection: 'keyflow_leases', query: 'lease by entity', ms: [0.5, 0.6], runs: 9, ratio: 1.2 },
      ],
    },
    'bench/results/queries-latest.json',
  );
  expect(block).toContain(
    '`bench/results/queries-latest.json`: `keyflow bench queries`, started 2026-12-07T14:05:00.000Z, 1500 s._',
  );
  expect(block).toContain(
    '2 declared queries; 1 cost more than twice as much at 1,000,000 rows as at 1,000.',
  );
  expect(block).toContain('| keyflow_provenance | provenance by event | 1.20 | 9000.00 | 3 | **7500** |');
  expect(block).toContain('| keyflow_leases | lease by entity | 0.50 | 0.60 | 9 | 1.2 |');
});

test('the README stays a front door: at most 250 lines, the two commands in its first screen', () => {
  const lines = text['README.md']!.split('\n');
  expect(lines.length).toBeLessThanOrEqual(250);
  const screen = lines.slice(0, 40).join('\n');
  expect(screen).toContain('npm ci && npm run demo');
  expect(screen).toMatch(/^npm test\b/m);
});
