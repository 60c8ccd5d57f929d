// Replay's cost as the store grows, without the live pipeline: the growth scenario's replay figures
// (`replay --id` of a lead, the full pass and a raw read of the same inputs) on a store
// the size of the growth burst (22,000 archived conversions over 2,000 leads) and on one holding the
// growth preload (1,000,000 over 100,000), each written by the preload in a database of its own. For a
// server whose write path is too slow for the growth scenario's drains within its time limit
// (SecantusDB 0.7 drained about 30 events/s on this machine), and as a quick check on any server.
// Uses MONGO_URL; name the server with KEYFLOW_MONGO_SERVER for the report.
// Run: npx tsx src/bench/replay-growth.ts [--conversions 1000000] [--id-only] [--keep] [--name <name>]
// --id-only skips the full pass and the raw read (on SecantusDB 0.7 the full pass of the 1,000,000 store
// ran at about 19 entities/s); --keep keeps the databases, kfreplay_<name>_<size>, and a later run with
// the same --name reuses a kept one whose archive holds its size instead of writing it again.
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { appDataflows } from '../app/dataflows';
import { loadConfig, redactUrl } from '../config';
import { preloadConversions } from './preload';
import { archiveOf } from '../conversions/store';
import { replayEntity } from '../replay/engine';
import { fullPassFigures } from './replay-figures';
import { runScript, wholeFlag } from './script';

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

const LEAD = 'pre-0';
const ID_RUNS = 21;

const SMALL = { conversions: 22_000, leads: 2_000 };

async function main(args: string[]): Promise<number> {
  const conversions = wholeFlag(args, 'conversions', 1_000_000, SMALL.conversions);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const config = loadConfig(process.env, { require: ['mongoUrl'] });
  const client = await MongoClient.connect(config.mongoUrl);
  const named = args.indexOf('--name');
  const stamp = named >= 0 ? args[named + 1]! : Date.now().toString(36);
  const idOnly = args.includes('--id-only');
  const keep = args.includes('--keep');
  const tables = appDataflows().flatMap((f) => f.replay);
  const startedAt = new Date().toISOString();
  const figures: Record<string, number> = {};
  const sizes = [SMALL, { conversions, leads: Math.floor(conversions / 10) }];
  const dbs = sizes.map((size) => client.db(`kfreplay_${stamp}_${size.conversions}`));
  const labels = sizes.map((size) => `${size.conversions} archived conversions`);
  try {
    for (const [i, size] of sizes.entries()) {
      const db = dbs[i]!;
      if ((await archiveOf(db).estimatedDocumentCount()) === size.conversions) {
        out(`reusing ${db.databaseName}: its archive holds ${size.conversions} conversions`);
        continue;
      }
      await db.dropDatabase();
      out(`preloading ${size.conversions} archived conversions over ${size.leads} leads`);
      const ms = await preloadConversions(db, size);
      figures[`${labels[i]}: preload (s)`] = Math.round(ms / 100) / 10;
    }
    // replay --id on both stores in turn, so a slow spell of the shared machine falls on both.
    const times: number[][] = dbs.map(() => []);
    for (const db of dbs) await replayEntity(db, tables, LEAD); // readies the lead's history
    for (let r = 0; r < ID_RUNS; r++) {
      for (const [i, db] of dbs.entries()) {
        const t = process.hrtime.bigint();
        await replayEntity(db, tables, LEAD, { entity: 'leadId' });
        times[i]!.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }
    const medians = times.map((list) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)]!);
    for (const [i, label] of labels.entries()) {
      figures[`${label}: replay --id of a lead (ms, median of ${ID_RUNS})`] =
        Math.round(medians[i]! * 10) / 10;
    }
    figures['replay --id, large ÷ small store'] = Math.round((medians[1]! / medians[0]!) * 100) / 100;
    if (!idOnly) {
      for (const [i, db] of dbs.entries())
        Object.assign(figures, await fullPassFigures(db, tables, labels[i]!));
    }
    for (const [k, v] of Object.entries(figures)) out(`  ${k}: ${v}`);
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
    if (!keep) for (const db of dbs) await db.dropDatabase();
    await client.close();
  }
}

if (require.main === module) runScript(main);
