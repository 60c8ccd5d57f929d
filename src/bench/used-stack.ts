// The demo and /ops on a used stack: `npm run demo -- --once` timed on a fresh database and on one that
// already holds a long history (the growth preload's archived conversions and rows, plus a provenance
// record per archived event, a twentieth of them out of order and copied where the ops report reads
// them, as the live stage writes them), each run
// a child process as a user starts it; then, with --browser, /ops of a serving demo on the used
// database opened in headless Chromium, timed from the log-in to its first complete refresh, with a
// screenshot. Uses the running stack (MONGO_URL and the others from the environment); its databases are
// dropped afterwards unless --keep.
// Run: npx tsx src/bench/used-stack.ts [--conversions 100000] [--rounds 2] [--browser] [--keep]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import { loadConfig } from '../config';
import { archiveIdOf } from '../conversions/reducer';
import { appDataflows } from '../app/dataflows';
import { ENGINE_INDEXES } from '../runtime/engine-queries';
import { ensureIndexes } from '../state/mongo';
import { markCopied, writeOutOfOrder } from '../state/out-of-order';
import { PROVENANCE_COLLECTION, provenancePosition } from '../state/provenance';
import { preloadConversions, PRELOAD_TENANT } from './preload';
import { runScript, wholeFlag } from './script';

const BIN = path.join(__dirname, '..', '..', 'bin', 'keyflow.js');
const CHUNK = 5_000;

/** One provenance record per preloaded archived event, as the conversions stage records a delivery. */
export async function preloadProvenance(db: Db, conversions: number, leads: number): Promise<void> {
  const base = Date.UTC(2025, 0, 1);
  for (let start = 0; start < conversions; start += CHUNK) {
    const docs = [];
    for (let i = start; i < Math.min(conversions, start + CHUNK); i++) {
      const consumedAt = base + i * 1000 + 250;
      const position = provenancePosition('conversions', 'conversions.v1', i % 6, String(i));
      docs.push({
        _id: `${position}:${consumedAt}:pre`,
        position,
        stage: 'conversions',
        topic: 'conversions.v1',
        partition: i % 6,
        offset: String(i),
        key: `pre-${i % leads}`,
        eventId: archiveIdOf({ tenantId: PRELOAD_TENANT, eventId: `pre-e${i}` }),
        tenantId: PRELOAD_TENANT,
        occurredAt: base + i * 1000,
        consumedAt,
        finishedAt: consumedAt + 40,
        attempt: 1,
        outcome: 'applied',
        outOfOrder: i % 20 === 0,
        emitted: ['changes.lead-conversions.v1'],
        committedAt: consumedAt + 900,
      });
    }
    await db.collection(PROVENANCE_COLLECTION).insertMany(docs as never[], { ordered: false });
    // As the recorder writes them: the out-of-order ones also where the ops report reads them.
    await writeOutOfOrder(db, docs.filter((d) => d.outOfOrder) as never[]);
  }
  await markCopied(db);
}

interface DemoRun {
  db: string;
  ms: number;
  code: number | null;
  /** The demo's own summary line ("wall time …"). */
  wall: string;
  endToEnd: string;
}

function demoEnv(dbName: string, stateDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MONGO_DB: dbName,
    KEYFLOW_STATE_DIR: stateDir,
    PORT: '0',
    ADMIN_PORT: '0',
  };
  delete env.LOG_LEVEL;
  delete env.KEYFLOW_LOG_FILE;
  return env;
}

function summaryField(stdout: string, name: string): string {
  const line = stdout.split('\n').find((l) => l.trim().startsWith(name));
  return line?.trim().replace(/\s{2,}/g, ' ') ?? '(missing)';
}

async function runDemoOnce(dbName: string, stateDir: string): Promise<DemoRun> {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, 'demo', '--once'], {
    env: demoEnv(dbName, stateDir),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += String(d)));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return {
    db: dbName,
    ms: Date.now() - started,
    code,
    wall: summaryField(stdout, 'wall time'),
    endToEnd: summaryField(stdout, 'end to end'),
  };
}

/** A serving demo on `dbName`; resolves with its admin URL and token once it says it serves. */
function serveDemo(
  dbName: string,
  stateDir: string,
): Promise<{ child: ChildProcess; admin: string; token: string }> {
  const child = spawn(process.execPath, [BIN, 'demo'], {
    env: demoEnv(dbName, stateDir),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the serving demo exited (${code}) before serving`)));
    child.stdout!.on('data', (d) => {
      stdout += String(d);
      if (!stdout.includes('Serving until Ctrl-C.')) return;
      const admin = /admin on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
      const token = /"Authorization: Bearer"\): (\S+)/.exec(stdout)?.[1];
      if (!admin || !token) reject(new Error(`no admin URL or token in the demo's output:\n${stdout}`));
      else resolve({ child, admin, token });
    });
  });
}

/** /ops in headless Chromium: ms from the log-in to the first complete refresh, and what each panel shows. */
async function opsInBrowser(admin: string, token: string, screenshot: string) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1400 } });
    await page.goto(`${admin}/ops`);
    await page.fill('#token', token);
    const started = Date.now();
    await page.click('button[type="submit"]');
    await page.waitForSelector('body[data-refreshed-at]', { timeout: 60_000 });
    const ms = Date.now() - started;
    const panels = await page.$$eval('section', (sections) =>
      sections.map((s) => ({
        title: s.querySelector('h2')?.textContent ?? '',
        loading: (s.textContent ?? '').includes('loading…'),
        rows: s.querySelectorAll('tbody tr').length,
      })),
    );
    const status = await page.textContent('#status');
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    return { ms, panels, status };
  } finally {
    await browser.close();
  }
}

async function main(args: string[]): Promise<number> {
  const conversions = wholeFlag(args, 'conversions', 100_000, 1);
  const rounds = wholeFlag(args, 'rounds', 2, 1);
  const leads = Math.max(1, Math.floor(conversions / 10));
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const config = loadConfig(process.env, { require: ['mongoUrl'] });
  const client = await MongoClient.connect(config.mongoUrl);
  const stamp = Date.now().toString(36);
  const used = `kfused_${stamp}_used`;
  const made: string[] = [used];
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kfused-'));
  try {
    out(
      `preloading ${conversions} archived conversions over ${leads} leads, and their provenance, into ${used}`,
    );
    const t = Date.now();
    // The indexes exist before the history, as on a stack whose processor created them when it first ran.
    await ensureIndexes(client.db(used), [...ENGINE_INDEXES, ...appDataflows().flatMap((f) => f.indexes)]);
    await preloadConversions(client.db(used), { conversions, leads });
    await preloadProvenance(client.db(used), conversions, leads);
    out(`  preload ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const runs: { fresh: DemoRun; used: DemoRun }[] = [];
    for (let r = 0; r < rounds; r++) {
      const fresh = `kfused_${stamp}_fresh${r}`;
      made.push(fresh);
      const a = await runDemoOnce(fresh, stateDir);
      out(`  round ${r + 1}, fresh store: ${a.ms} ms (exit ${a.code}; ${a.wall}; ${a.endToEnd})`);
      const b = await runDemoOnce(used, stateDir);
      out(`  round ${r + 1}, used store:  ${b.ms} ms (exit ${b.code}; ${b.wall}; ${b.endToEnd})`);
      runs.push({ fresh: a, used: b });
    }
    const best = (list: number[]) => Math.min(...list);
    const freshMs = best(runs.map((r) => r.fresh.ms));
    const usedMs = best(runs.map((r) => r.used.ms));
    out(
      `demo --once, best of ${rounds}: fresh ${(freshMs / 1000).toFixed(1)} s, with ${conversions} archived conversions ${(usedMs / 1000).toFixed(1)} s: ${(usedMs / freshMs).toFixed(2)}×`,
    );
    if (runs.some((r) => r.fresh.code !== 0 || r.used.code !== 0)) {
      out('a demo run exited non-zero: see its output above');
      return 1;
    }
    if (args.includes('--browser')) {
      const served = await serveDemo(used, stateDir);
      try {
        // Each of the page's API calls on its own, so a slow panel is named.
        for (const route of ['/ops/api/stages', '/ops/api/out-of-order?limit=20', '/ops/api/batches']) {
          const t0 = Date.now();
          const res = await fetch(`${served.admin}${route}`, {
            headers: { authorization: `Bearer ${served.token}` },
          });
          await res.arrayBuffer();
          out(`  GET ${route}: ${res.status} in ${Date.now() - t0} ms`);
        }
        const shot = path.join('test-output', 'ops-used-stack.png');
        const ops = await opsInBrowser(served.admin, served.token, shot);
        out(
          `/ops on the used store: first complete refresh ${ops.ms} ms after the log-in; status "${ops.status}"`,
        );
        for (const p of ops.panels) out(`  ${p.title}: ${p.loading ? 'STILL LOADING' : `${p.rows} row(s)`}`);
        out(`  screenshot: ${shot}`);
      } finally {
        served.child.kill('SIGINT');
        await new Promise((resolve) => served.child.once('exit', resolve));
      }
    }
    return 0;
  } finally {
    if (!args.includes('--keep')) for (const db of made) await client.db(db).dropDatabase();
    else out(`kept ${made.join(', ')}`);
    await client.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

if (require.main === module) runScript(main);
