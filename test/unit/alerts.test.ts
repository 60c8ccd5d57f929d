// The provisioned alert rules and Grafana dashboard name only metrics the processor exports, the
// alerts the ops runbook relies on exist, and docker-compose mounts both where their configs point.
// `promtool check rules` (Debian's prometheus package, installed by scripts/test-tools.js) checks them too.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Instrumentation } from '../../src/instrumentation';
import { createLogger } from '../../src/logger';
import { LagCollector, type LagOffsets } from '../../src/monitoring/lag';
import { createMetricsRegistry, registerStageMetrics } from '../../src/monitoring/metrics';

const root = path.join(__dirname, '..', '..');
const read = (p: string) => fs.readFileSync(path.join(root, p), 'utf8');
const ALERTS = 'deploy/prometheus/alerts.yml';
const DASHBOARD = 'deploy/grafana/provisioning/dashboards/keyflow.json';

/** Series Prometheus makes itself rather than scraping them from us. */
const SYNTHETIC = new Set(['up']);
const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** Every metric the processor registers, with the series names a histogram or summary adds. */
async function exportedMetrics(): Promise<Set<string>> {
  const registry = createMetricsRegistry();
  registerStageMetrics(registry, new Instrumentation());
  const idle = async () => {
    throw new Error('never polled here');
  };
  const offsets: LagOffsets = { committed: idle, bounds: idle, groups: idle };
  new LagCollector({
    offsets,
    groups: [],
    registry,
    log: createLogger('silent'),
    intervalMs: 1000,
    stallAfterMs: 1000,
  });
  const names = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    if (String(m.type) === 'summary') for (const s of ['_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

/** Metric names in a PromQL expression: identifiers left once strings, matchers, ranges, label lists, numbers and calls are gone. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\boffset\s+\d+[smhdwy]\b/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/(^|[^\w:.])\d+(\.\d+)?(e[+-]?\d+)?/gi, '$1 ');
  return [...bare.matchAll(/([A-Za-z_:][\w:]*)\s*(\()?/g)]
    .filter((m) => m[2] === undefined && !PROMQL_WORDS.has(m[1]!.toLowerCase()))
    .map((m) => m[1]!);
}

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  severity?: string;
  summary?: string;
}

/** The rules file is kept flat on purpose (one-line exprs), so this small reader is enough. */
function readRules(text: string): Rule[] {
  const rules: Rule[] = [];
  for (const line of text.split('\n')) {
    const alert = /^\s*- alert:\s*(\S+)\s*$/.exec(line);
    if (alert) {
      rules.push({ alert: alert[1]!, expr: '' });
      continue;
    }
    const field = /^\s*(expr|for|severity|summary):\s*(.+?)\s*$/.exec(line);
    const rule = rules[rules.length - 1];
    if (field && rule) rule[field[1] as 'expr' | 'for' | 'severity' | 'summary'] = field[2]!;
  }
  return rules;
}

test('the name extraction finds metrics and skips functions, labels and keywords', () => {
  expect(
    metricNames(
      'sum by (stage) (rate(a_total{x="y{z}"}[5m])) / clamp_min(sum by (stage) (rate(b_total[$__rate_interval])), 1e-9) > 0.05 and on (g) c == 0',
    ),
  ).toEqual(['a_total', 'b_total', 'c']);
  expect(metricNames('histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))')).toEqual(['h_bucket']);
});

test('every alert is complete and names only exported metrics; the runbook alerts exist', async () => {
  const exported = await exportedMetrics();
  const rules = readRules(read(ALERTS));
  expect(rules.map((r) => r.alert)).toEqual(
    expect.arrayContaining([
      'KeyflowConsumerLagGrowing',
      'KeyflowPartitionStalled',
      'KeyflowDeadLetterRate',
      'KeyflowOutOfOrderRate',
      'KeyflowConsumerGroupEmpty',
      'KeyflowOffsetsSkipped',
    ]),
  );
  expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  for (const r of rules) {
    expect({ alert: r.alert, for: r.for, severity: r.severity, summary: r.summary }).toEqual({
      alert: r.alert,
      for: expect.stringMatching(/^\d+[smh]$/),
      severity: expect.stringMatching(/^(critical|warning|info)$/),
      summary: expect.any(String),
    });
    const names = metricNames(r.expr);
    expect(names.length).toBeGreaterThan(0);
    expect({ alert: r.alert, unknown: names.filter((n) => !exported.has(n) && !SYNTHETIC.has(n)) }).toEqual({
      alert: r.alert,
      unknown: [],
    });
  }
});

test('every dashboard query names only exported metrics', async () => {
  const exported = await exportedMetrics();
  const dash = JSON.parse(read(DASHBOARD)) as {
    uid: string;
    panels: { title: string; type: string; targets?: { expr: string }[] }[];
    templating: { list: { definition?: string }[] };
  };
  expect(dash.uid).toBe('keyflow');
  const exprs = [
    ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr }))),
    ...dash.templating.list.flatMap((v) =>
      v.definition
        ? [{ where: 'variable', expr: v.definition.replace(/^label_values\((\w+),.*$/, '$1') }]
        : [],
    ),
  ];
  expect(exprs.length).toBeGreaterThan(10);
  const unknown = exprs.flatMap(({ where, expr }) =>
    metricNames(expr)
      .filter((n) => !exported.has(n))
      .map((n) => `${where}: ${n}`),
  );
  expect(unknown).toEqual([]);
  for (const m of [
    'kafka_consumergroup_lag',
    'keyflow_consumergroup_lag_seconds',
    'keyflow_partition_stalled',
  ]) {
    expect(exprs.some((e) => e.expr.includes(m))).toBe(true);
  }
});

test('docker-compose provisions the rules and the dashboard where their configs point', () => {
  const compose = read('docker-compose.yml');
  expect(compose).toContain('./deploy/prometheus:/etc/prometheus');
  expect(compose).toContain('./deploy/grafana/provisioning:/etc/grafana/provisioning');
  expect(read('deploy/prometheus/prometheus.yml')).toMatch(
    /rule_files:\s*\n\s*- \/etc\/prometheus\/alerts\.yml/,
  );
  expect(read('deploy/grafana/provisioning/dashboards/dashboards.yml')).toContain(
    'path: /etc/grafana/provisioning/dashboards',
  );
});

// promtool comes with Debian's prometheus package, which `npm test` installs (scripts/test-tools.js).
test('promtool accepts the rules', () => {
  const r = spawnSync('promtool', ['check', 'rules', path.join(root, ALERTS)], { encoding: 'utf8' });
  expect(r.stdout + r.stderr).toContain('SUCCESS');
  expect(r.status).toBe(0);
});

// The rule's own behaviour, in promtool's unit-test format next to this file: a skip fires, also on a
// series born above zero (a processor that found it right after it started), and resolves after 15 m.
test('promtool: KeyflowOffsetsSkipped fires on a skip and resolves', () => {
  const r = spawnSync(
    'promtool',
    ['test', 'rules', path.join(__dirname, 'promtool', 'offsets-skipped.test.yml')],
    {
      encoding: 'utf8',
    },
  );
  expect(r.stdout + r.stderr).toContain('SUCCESS');
  expect(r.status).toBe(0);
});
