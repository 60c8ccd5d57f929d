// Replay's cost as the store grows, without the live pipeline: the growth scenario's replay figures
// (`replay --id` of a lead, the full pass and a raw read of the same inputs) on a store
// the size of the growth burst (22,000 archived conversions over 2,000 leads) and on one holding the
// growth preload (1,000,000 over 100,000), each written by the preload in a database of its own. For a
// server whose write path is too slow for the growth scenario's drains within its time limit
// (SecantusDB 0.7 drained about 30 events/s on this machine), and as a quick check on any server.
// Uses MONGO_URL; name the server with KEYFLOW_MONGO_SERVER for the report.
// Run: npx tsx src/bench/replay-growth.ts [--conversions 1000000]
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { appDataflows } from '../app/dataflows';
import { loadConfig, redactUrl } from '../config';
import { preloadConversions } from './preload';
import { replayFigures } from './replay-figures';

export interface ReplayGrowthRun {
  server: string;
  mongoServer: string;
  startedAt: string;
  figures: Record<string, number>;
}

/** The run as Markdown: its figures in a table. */
export function replayGrowthMarkdown(r: ReplayGrowthRun): string {
  return [
    `# Replay as the store grows (${r.server}), ${r.startedAt}`,
    '',
    '| figure | value |',
    '| --- | ---: |',
    ...Object.entries(r.figures).map(([k, v]) => `| ${k} | ${v} |`),
    '',
  ].join('\n');
}

const SMALL = { conversions: 22_000, leads: 2_000 };

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!Number.isInteger(value) || value < SMALL.conversions) {
    throw new Error(`--${name} wants a whole number ≥ ${SMALL.conversions}`);
  }
  return value;
}

async function main(args: string[]): Promise<number> {
  const conversions = flag(args, 'conversions', 1_000_000);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const config = loadConfig(process.env, { require: ['mongoUrl'] });
  const client = await MongoClient.connect(config.mongoUrl);
  const stamp = Date.now().toString(36);
  const tables = appDataflows().flatMap((f) => f.replay);
  const startedAt = new Date().toISOString();
  const figures: Record<string, number> = {};
  const sizes = [SMALL, { conversions, leads: Math.floor(conversions / 10) }];
  try {
    for (const size of sizes) {
      const db = client.db(`kfreplay_${stamp}_${size.conversions}`);
      try {
        out(`preloading ${size.conversions} archived conversions over ${size.leads} leads`);
        const ms = await preloadConversions(db, size);
        figures[`${size.conversions} archived conversions: preload (s)`] = Math.round(ms / 100) / 10;
        const got = await replayFigures(db, tables, 'pre-0', `${size.conversions} archived conversions`);
        for (const [k, v] of Object.entries(got)) out(`  ${k}: ${v}`);
        Object.assign(figures, got);
      } finally {
        await db.dropDatabase();
      }
    }
    const idTimes = sizes.map(
      (s) => figures[`${s.conversions} archived conversions: replay --id of a lead (ms, median of 5)`]!,
    );
    figures['replay --id, large ÷ small store'] =
      Math.round((idTimes[1]! / Math.max(1, idTimes[0]!)) * 100) / 100;
    const server = `${config.mongoServer} at ${redactUrl(config.mongoUrl)}`;
    const result: ReplayGrowthRun = { server, mongoServer: config.mongoServer, startedAt, figures };
    const md = replayGrowthMarkdown(result);
    const dir = path.join('bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `replay-growth-${config.mongoServer}-${startedAt.replace(/[:.]/g, '-')}.md`);
    fs.writeFileSync(file, md);
    fs.writeFileSync(file.replace(/\.md$/, '.json'), `${JSON.stringify(result, null, 2)}\n`);
    // What `keyflow figures` renders into the docs, one file per server.
    fs.writeFileSync(
      path.join(dir, `replay-growth-${config.mongoServer}-latest.json`),
      `${JSON.stringify(result, null, 2)}\n`,
    );
    out(md);
    out(`Wrote ${file}.`);
    return 0;
  } finally {
    await client.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
