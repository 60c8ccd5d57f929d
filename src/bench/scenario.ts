// A benchmark scenario is data: a JSON file under bench/scenarios/ validated here. It names the tenants
// and their settings, where the events come from (the synthetic generator or a recorded JSONL file),
// how keys are skewed, what share arrives late or twice, which handler failures are injected, and
// which loads to measure at. `quick` and `all` are suites: the files that list them.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { KeyflowError } from '../errors';

const share = z.number().min(0).max(1);

const synthetic = z.strictObject({
  kind: z.literal('synthetic'),
  seed: z.number().int(),
  appointments: z.number().int().min(0),
  leads: z.number().int().min(0),
  /** Mean conversions per lead; with keySkew > 0 a few hot leads get most of them. */
  conversionsPerLead: z.number().int().min(0),
});

const recorded = z.strictObject({
  kind: z.literal('recorded'),
  /** A JSONL file, relative to the scenario file; see bench/data/README.md for its format. */
  file: z.string().min(1),
  /** Replays the file this many times, each copy under fresh ids (default 1). */
  repeat: z.number().int().min(1).default(1),
});

export const scenarioSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and dashes'),
  description: z.string().min(1),
  /** Suites this scenario belongs to: `quick`, `all`. */
  suites: z.array(z.enum(['quick', 'all'])).default([]),
  tenants: z
    .strictObject({
      count: z.number().int().min(1),
      /** Settings JSON published for every tenant on the settings topic before the run. */
      settings: z.record(z.string(), z.unknown()).default({}),
    })
    .default({ count: 3, settings: {} }),
  /** Process-wide runtime switches (the `*` record of the settings topic). */
  runtime: z
    .strictObject({ entityLocking: z.enum(['off', 'lease']).default('off') })
    .default({ entityLocking: 'off' }),
  source: z.discriminatedUnion('kind', [synthetic, recorded]),
  /** Zipf exponent of events per lead: 0 spreads them evenly, 1.2 makes a few leads hot. */
  keySkew: z.number().min(0).max(3).default(0),
  lateShare: share.default(0),
  duplicateShare: share.default(0),
  failures: z
    .strictObject({
      /** Share of events whose first write attempts fail with a retriable error. */
      transientShare: share.default(0),
      /** How many attempts of such an event fail before one succeeds. */
      transientAttempts: z.number().int().min(1).max(3).default(1),
      /** Share (of the event count) of undecodable records added, each under its own key. */
      poisonShare: share.default(0),
    })
    .default({ transientShare: 0, transientAttempts: 1, poisonShare: 0 }),
  partitions: z.number().int().min(1).max(64).default(6),
  load: z
    .strictObject({
      /**
       * Drain a pre-published backlog: the maximum throughput of each contestant. Always on: the
       * open-loop loads are fractions of the pipeline's maximum, so there is nothing to run without it.
       */
      max: z
        .literal(true, 'must be true: the open-loop loads are fractions of the measured maximum')
        .default(true),
      /** Drains per contestant, interleaved round by round; the median throughput is kept. */
      maxRepeats: z.number().int().min(1).max(9).default(3),
      /** Open-loop loads as fractions of the pipeline's measured maximum. */
      openLoop: z.array(z.number().gt(0).max(2)).default([0.5]),
      /** Seconds each open-loop load runs for. */
      openLoopSeconds: z.number().min(1).max(120).default(10),
      /** Baselines also measured in the open loop (the pipeline always is). */
      openLoopBaselines: z.array(z.enum(['passthrough', 'incumbent', 'bullmq'])).default(['passthrough']),
    })
    .default({
      max: true,
      maxRepeats: 3,
      openLoop: [0.5],
      openLoopSeconds: 10,
      openLoopBaselines: ['passthrough'],
    }),
  baselines: z
    .array(z.enum(['passthrough', 'storeCeiling', 'incumbent', 'bullmq']))
    .default(['passthrough', 'storeCeiling', 'incumbent', 'bullmq']),
  /** Hard bound on the whole scenario; a measurement cut short is reported as timed out. */
  timeLimitSeconds: z.number().int().min(10).max(1200).default(300),
  /**
   * Growth: after the usual runs, the pipeline drains the same set once more on a store preloaded (by
   * bulk insert) with this many archived conversions over this many leads; both throughputs and
   * their ratio are reported.
   */
  preload: z
    .strictObject({ conversions: z.number().int().min(1), leads: z.number().int().min(1) })
    .optional(),
  /** Time a replay full pass (and a raw read of the inputs) after the pipeline's checked run. */
  replay: z.boolean().default(false),
});

export type Scenario = z.infer<typeof scenarioSchema>;
export type ScenarioFile = Scenario & { file: string };

export const SCENARIO_DIR = path.join('bench', 'scenarios');

/** Parses one scenario file; a bad file is refused with its path and the first problem. */
export function parseScenario(text: string, file: string): ScenarioFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new KeyflowError('USAGE', `${file}: not JSON: ${(err as Error).message}`);
  }
  const parsed = scenarioSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new KeyflowError('USAGE', `${file}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  const base = path.basename(file, '.json');
  if (parsed.data.name !== base) {
    throw new KeyflowError('USAGE', `${file}: name "${parsed.data.name}" must match the file name "${base}"`);
  }
  return { ...parsed.data, file };
}

export function listScenarios(dir = SCENARIO_DIR): ScenarioFile[] {
  if (!fs.existsSync(dir)) throw new KeyflowError('USAGE', `no scenario folder at ${dir}`);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => parseScenario(fs.readFileSync(path.join(dir, f), 'utf8'), path.join(dir, f)));
}

/** `quick`, `all`, a scenario name, or a path to a scenario file. */
export function selectScenarios(what: string, dir = SCENARIO_DIR): ScenarioFile[] {
  if (what.endsWith('.json')) return [parseScenario(fs.readFileSync(what, 'utf8'), what)];
  const all = listScenarios(dir);
  if (what === 'quick' || what === 'all') {
    // The quick suite's scenarios first: the first one is the headline of the results file.
    const picked = all
      .filter((s) => s.suites.includes(what))
      .sort((a, b) => Number(b.suites.includes('quick')) - Number(a.suites.includes('quick')));
    if (picked.length === 0)
      throw new KeyflowError('USAGE', `no scenario in ${dir} lists the suite "${what}"`);
    return picked;
  }
  const one = all.find((s) => s.name === what);
  if (!one) {
    throw new KeyflowError(
      'USAGE',
      `unknown scenario "${what}"; choose quick, all, or one of: ${all.map((s) => s.name).join(', ')}`,
    );
  }
  return [one];
}
