// A real Prometheus (Debian's `prometheus` package) beside the fault suite: it scrapes every fault
// child through file-based service discovery, evaluates deploy/prometheus/alerts.yml with `for:`
// scaled to seconds, and answers the queries that say which alerts fired and resolved in a scenario
// and whether every dashboard query returns series.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyflowError } from '../errors';
import { isAlive } from '../services/process';
import {
  dashboardQueries,
  deriveScrapeConfig,
  scaleRuleFor,
  substitute,
  templateValues,
  type DashboardQuery,
} from './prometheus-config';

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN || '/usr/bin/prometheus';
/** Scrape and rule evaluation interval of the suite's Prometheus. */
export const SCRAPE_INTERVAL = '1s';
/** What the dashboard's `$__rate_interval` becomes: four scrapes, as Grafana's own minimum. */
export const RATE_INTERVAL = '4s';

const REPO = path.join(__dirname, '..', '..');
const DEPLOY_PROMETHEUS = path.join(REPO, 'deploy', 'prometheus', 'prometheus.yml');
const DEPLOY_ALERTS = path.join(REPO, 'deploy', 'prometheus', 'alerts.yml');
const DASHBOARD = path.join(REPO, 'deploy', 'grafana', 'provisioning', 'dashboards', 'keyflow.json');

/** The child's side: the environment variable naming the folder it writes its scrape target into. */
export const TARGETS_DIR_ENV = 'FAULT_TARGETS_DIR';

/** The file_sd entry of one fault child, written by the child once its /metrics listens. */
export function targetEntry(port: number, labels: Record<string, string>): string {
  return `${JSON.stringify([{ targets: [`127.0.0.1:${port}`], labels }])}\n`;
}

/** Writes the entry so Prometheus never reads half of it: a temporary file, then a rename. */
export function writeTarget(dir: string, pid: number, entry: string): string {
  const file = path.join(dir, `${pid}.json`);
  fs.writeFileSync(`${file}.tmp`, entry);
  fs.renameSync(`${file}.tmp`, file);
  return file;
}

/**
 * Alerts each scenario must fire and resolve. Only the outages that make events wait long enough for
 * an alert are listed; a scenario not named here must end with no alert still firing and reports any
 * that fired on the way.
 */
export const EXPECTED_ALERTS: Record<string, readonly string[]> = {
  'registry-down': ['KeyflowConsumerLagGrowing'],
  // Each killed instance's scrape target stays until its replacement is up: `up` reads 0 meanwhile.
  'processor-sigkill': ['KeyflowProcessorDown'],
};

export interface PromSample {
  metric: Record<string, string>;
  values: [number, string][];
}

export interface AlertSpan {
  alertname: string;
  /** The series' labels beside alertname and alertstate, e.g. `consumergroup=...,topic=...`. */
  labels: string;
  /** Epoch seconds of the first and last evaluation at which it was firing. */
  firedAt: number;
  lastFiringAt: number;
  /** Firing still at the end of the range. */
  open: boolean;
}

/**
 * Firing spans from a `query_range` of `ALERTS{alertstate="firing"}`: each series' first and last
 * sample, and whether its last sample is the range's last step (still firing then).
 */
export function firingSpans(series: PromSample[], end: number, step: number): AlertSpan[] {
  return series
    .filter((s) => s.values.length > 0)
    .map((s) => {
      const rest = Object.entries(s.metric)
        .filter(([k]) => k !== 'alertname' && k !== 'alertstate' && k !== '__name__')
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const first = s.values[0]![0];
      const last = s.values[s.values.length - 1]![0];
      return {
        alertname: s.metric.alertname ?? '?',
        labels: rest,
        firedAt: first,
        lastFiringAt: last,
        open: last >= end - step,
      };
    })
    .sort((a, b) => a.firedAt - b.firedAt);
}

export interface AlertVerdict {
  lines: string[];
  /** Expected alerts that did not both fire and resolve while the processor ran. */
  missing: string[];
}

/**
 * Whether an alert belongs to one of `arenas`: its labels name one of their topics, groups or stages
 * (`<prefix>.…`, a group also `<applicationId>.<prefix>.…`) or the arena itself (`arena=<prefix>`).
 * An alert naming no fault arena at all counts for every scenario, as it cannot be told apart.
 */
export function alertOfArenas(labels: string, arenas: readonly string[]): boolean {
  if (!/=([^,=.]+\.)?faults\./.test(labels)) return true;
  return arenas.some((prefix) =>
    labels.split(',').some((kv) => {
      const value = kv.slice(kv.indexOf('=') + 1);
      return value === prefix || value.replace(/^[^.]+\.(?=faults\.)/, '').startsWith(`${prefix}.`);
    }),
  );
}

/**
 * What a scenario's alerts say against what it should raise: every expected alert fired and was
 * resolved by the time the scenario's processors were stopped (`closedAt`); others are reported.
 * Given the scenario's arenas, alerts of earlier scenarios' arenas (a rate window keeps an alert up
 * for minutes) are left out of the verdict and named in one line.
 */
export function judgeAlerts(
  all: AlertSpan[],
  expected: readonly string[],
  startedAt: number,
  closedAt: number,
  arenas?: readonly string[],
): AlertVerdict {
  const rel = (t: number) => `+${(t - startedAt).toFixed(0)} s`;
  const ours = (s: AlertSpan) => arenas === undefined || alertOfArenas(s.labels, arenas);
  const spans = all.filter(ours);
  const carried = all.filter((s) => !ours(s));
  const lines = spans.map((s) => {
    const end =
      s.open || s.lastFiringAt >= closedAt
        ? 'still firing when the processors were stopped'
        : `resolved after ${rel(s.lastFiringAt)}`;
    return `alert ${s.alertname} fired at ${rel(s.firedAt)}, ${end} (${s.labels})`;
  });
  const missing: string[] = [];
  for (const name of expected) {
    const mine = spans.filter((s) => s.alertname === name);
    if (mine.length === 0) missing.push(`${name} never fired`);
    else if (mine.some((s) => s.open || s.lastFiringAt >= closedAt))
      missing.push(`${name} did not resolve while the processor ran`);
  }
  if (spans.length === 0) lines.push('no alert fired');
  if (carried.length > 0) {
    const names = [...new Set(carried.map((s) => s.alertname))].join(', ');
    lines.push(
      `${carried.length} alert(s) of earlier scenarios' arenas still in the window, not counted: ${names}`,
    );
  }
  return { lines, missing };
}

export interface DashboardResult extends DashboardQuery {
  query: string;
  series: number;
  error?: string;
}

interface PromResponse<T> {
  status: string;
  data?: T;
  error?: string;
}

/** A running Prometheus of the suite. `close()` stops it and is safe to call twice. */
export class SuitePrometheus {
  private closing?: Promise<void>;
  private keeper?: NodeJS.Timeout;

  private constructor(
    readonly url: string,
    readonly targetsDir: string,
    private readonly proc: ChildProcess,
    private readonly exited: Promise<void>,
  ) {}

  /**
   * Writes the derived config and rules into `dir` and starts Prometheus on `port` with its data there;
   * resolves once it reports ready. Refuses with a clear error when the package is missing.
   */
  static async start(dir: string, port: number): Promise<SuitePrometheus> {
    if (!fs.existsSync(PROMETHEUS_BIN)) {
      throw new KeyflowError(
        'SERVICE_START_FAILED',
        `the fault suite needs a Prometheus server at ${PROMETHEUS_BIN}: install Debian's prometheus package (node scripts/test-tools.js does) or point PROMETHEUS_BIN at one`,
      );
    }
    fs.rmSync(dir, { recursive: true, force: true });
    const targetsDir = path.join(dir, 'targets');
    fs.mkdirSync(targetsDir, { recursive: true });
    const rules = path.join(dir, 'alerts.yml');
    fs.writeFileSync(rules, scaleRuleFor(fs.readFileSync(DEPLOY_ALERTS, 'utf8')));
    const config = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(
      config,
      deriveScrapeConfig(fs.readFileSync(DEPLOY_PROMETHEUS, 'utf8'), {
        targetsGlob: path.join(targetsDir, '*.json'),
        ruleFiles: [rules],
        interval: SCRAPE_INTERVAL,
      }),
    );
    const log = fs.openSync(path.join(dir, 'prometheus.log'), 'a');
    const proc = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1d',
      ],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const url = `http://127.0.0.1:${port}`;
    const prom = new SuitePrometheus(url, targetsDir, proc, exited);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null) {
        throw new KeyflowError(
          'SERVICE_START_FAILED',
          `Prometheus exited (${proc.exitCode}) at start; see ${path.join(dir, 'prometheus.log')} (is port ${port} free? KEYFLOW_PROMETHEUS_PORT sets it)`,
        );
      }
      const ready = await fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline) {
        await prom.close();
        throw new KeyflowError(
          'SERVICE_START_FAILED',
          `Prometheus on port ${port} was not ready within 60 s`,
        );
      }
      await sleep(250);
    }
    prom.keeper = setInterval(() => prom.pruneReplaced(), 500);
    prom.keeper.unref();
    return prom;
  }

  /** The environment a fault child needs to register its /metrics for scraping. */
  childEnv(): Record<string, string> {
    return { [TARGETS_DIR_ENV]: this.targetsDir };
  }

  private targets(): { pid: number; file: string; mtime: number }[] {
    return fs
      .readdirSync(this.targetsDir)
      .filter((f) => /^\d+\.json$/.test(f))
      .map((f) => {
        const file = path.join(this.targetsDir, f);
        return {
          pid: Number(f.slice(0, -5)),
          file,
          mtime: fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0,
        };
      });
  }

  /**
   * A killed child cannot remove its own target, so Prometheus keeps scraping it and sees it down,
   * as it would a crashed pod. Once a later child runs (the replacement), the dead one's target goes,
   * as a replaced pod's does; while no replacement runs, it stays and `up` says the processor is down.
   */
  pruneReplaced(): void {
    try {
      const all = this.targets();
      const newestLive = Math.max(0, ...all.filter((t) => isAlive(t.pid)).map((t) => t.mtime));
      for (const t of all) if (!isAlive(t.pid) && t.mtime <= newestLive) fs.rmSync(t.file, { force: true });
    } catch {
      // The folder is rewritten by the children meanwhile; the next tick looks again.
    }
  }

  /** Forgets every target: the scenario's processors are gone on purpose. */
  clearTargets(): void {
    for (const t of this.targets()) fs.rmSync(t.file, { force: true });
  }

  private async api<T>(pathAndQuery: string): Promise<T> {
    const res = await fetch(`${this.url}${pathAndQuery}`);
    const body = (await res.json()) as PromResponse<T>;
    if (body.status !== 'success' || body.data === undefined) {
      throw new KeyflowError('USAGE', `Prometheus refused ${pathAndQuery}: ${body.error ?? res.status}`);
    }
    return body.data;
  }

  async instant(query: string): Promise<PromSample[]> {
    const data = await this.api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
      `/api/v1/query?query=${encodeURIComponent(query)}`,
    );
    return data.result.map((r) => ({ metric: r.metric, values: [r.value] }));
  }

  /** `query_range` from `start` to `end` (epoch seconds). */
  async range(query: string, start: number, end: number, step: number): Promise<PromSample[]> {
    const q = `query=${encodeURIComponent(query)}&start=${start}&end=${end}&step=${step}`;
    const data = await this.api<{ result: PromSample[] }>(`/api/v1/query_range?${q}`);
    return data.result;
  }

  /** Firing alerts from `start` to now, each with its first and last firing evaluation. */
  async alertSpans(start: number, end: number): Promise<AlertSpan[]> {
    const step = 1;
    return firingSpans(
      await this.range('ALERTS{alertstate="firing"}', Math.floor(start), Math.ceil(end), step),
      end,
      step,
    );
  }

  /**
   * Resolves once none of `names` fires (true), or false at the deadline. Alerts over a five-minute
   * rate window stay up for minutes after a fault healed, so the wait names the ones that matter.
   */
  async untilResolved(names: readonly string[], timeoutMs: number): Promise<boolean> {
    if (names.length === 0) return true;
    const query = `ALERTS{alertstate="firing",alertname=~"${names.join('|')}"}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const firing = await this.instant(query).catch(() => undefined);
      if (firing && firing.length === 0) return true;
      if (Date.now() > deadline) return false;
      await sleep(500);
    }
  }

  /** Every dashboard query over the run, with how many series it returned. */
  async dashboardCheck(start: number, end: number): Promise<DashboardResult[]> {
    const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
    const values = templateValues(dashboard, RATE_INTERVAL);
    const step = Math.max(1, Math.ceil((end - start) / 2000));
    const results: DashboardResult[] = [];
    for (const q of dashboardQueries(dashboard)) {
      const query = substitute(q.expr, values);
      try {
        const series = await this.range(query, Math.floor(start), Math.ceil(end), step);
        results.push({ ...q, query, series: series.length });
      } catch (err) {
        results.push({ ...q, query, series: 0, error: (err as Error).message });
      }
    }
    return results;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.keeper) clearInterval(this.keeper);
      if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
      const killed = setTimeout(() => this.proc.kill('SIGKILL'), 20_000);
      await this.exited;
      clearTimeout(killed);
    })();
    return this.closing;
  }
}

/** `promtool check config` on a derived config, when promtool is installed; null when it is not. */
export function promtoolCheck(configFile: string): { ok: boolean; output: string } | null {
  const r = spawnSync('promtool', ['check', 'config', configFile], { encoding: 'utf8' });
  if (r.error) return null;
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}
