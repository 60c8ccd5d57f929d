// The fault suite's Prometheus runs what we ship, rewritten only where a test run must differ: the
// rules' `for:` scaled to seconds, the scrape targets and intervals; and every dashboard query is
// run with its template variables filled in. These pin each rewrite and the alert verdicts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  dashboardQueries,
  deriveScrapeConfig,
  scaleDuration,
  scaleRuleFor,
  substitute,
  templateValues,
} from '../../src/faults/prometheus-config';
import {
  alertOfArenas,
  firingSpans,
  judgeAlerts,
  promtoolCheck,
  type PromSample,
} from '../../src/faults/prometheus';

const root = path.join(__dirname, '..', '..');
const read = (p: string) => fs.readFileSync(path.join(root, p), 'utf8');
const ALERTS = read('deploy/prometheus/alerts.yml');
const PROMETHEUS = read('deploy/prometheus/prometheus.yml');
const DASHBOARD = JSON.parse(read('deploy/grafana/provisioning/dashboards/keyflow.json'));

test('a duration is scaled from minutes to seconds, never below one second', () => {
  expect(scaleDuration('10m')).toBe('10s');
  expect(scaleDuration('1m')).toBe('1s');
  expect(scaleDuration('1h')).toBe('60s');
  expect(scaleDuration('90s')).toBe('2s');
  expect(scaleDuration('15s')).toBe('1s');
  expect(() => scaleDuration('ten minutes')).toThrow(/cannot scale the rule duration "ten minutes"/);
});

test('the rule file keeps everything but `for:`, which every rule has scaled', () => {
  const scaled = scaleRuleFor(ALERTS);
  const fors = (text: string) => [...text.matchAll(/^\s+for:\s*(\S+)$/gm)].map((m) => m[1]);
  expect(fors(ALERTS).length).toBeGreaterThan(0);
  expect(fors(scaled)).toEqual(fors(ALERTS).map((d) => scaleDuration(d!)));
  const withoutFor = (text: string) => text.replace(/^\s+for:.*$/gm, '');
  expect(withoutFor(scaled)).toBe(withoutFor(ALERTS));
  expect(() => scaleRuleFor('groups: []\n')).toThrow(/no `for:`/);
});

test('the derived scrape config swaps targets, intervals and rule files and keeps the rest', () => {
  const derived = deriveScrapeConfig(PROMETHEUS, {
    targetsGlob: '/run/t/*.json',
    ruleFiles: ['/run/alerts.yml'],
    interval: '1s',
  });
  expect(derived).not.toMatch(/static_configs|keyflow:8080|\/etc\/prometheus\/alerts\.yml|15s/);
  expect(derived).toMatch(/^ {2}scrape_interval: 1s$/m);
  expect(derived).toMatch(/^ {2}evaluation_interval: 1s$/m);
  expect(derived).toMatch(/^rule_files:\n {2}- '\/run\/alerts\.yml'$/m);
  expect(derived).toMatch(
    /- job_name: keyflow\n {4}file_sd_configs:\n {6}- files: \['\/run\/t\/\*\.json'\]\n {8}refresh_interval: 1s/,
  );
});

test('relabelling and other jobs survive the rewrite; a config without targets is refused', () => {
  const two = [
    'global:',
    '  scrape_interval: 30s',
    'rule_files:',
    '  - a.yml',
    'scrape_configs:',
    '  - job_name: one',
    '    static_configs:',
    "      - targets: ['x:1']",
    '        labels: { team: a }',
    '    relabel_configs:',
    '      - source_labels: [__address__]',
    '        target_label: host',
    '  - job_name: two',
    '    static_configs:',
    "    - targets: ['y:2']",
    '    metrics_path: /m',
    '',
  ].join('\n');
  const derived = deriveScrapeConfig(two, { targetsGlob: 'g/*.json', ruleFiles: ['r.yml'], interval: '2s' });
  expect(derived).toContain(
    '    relabel_configs:\n      - source_labels: [__address__]\n        target_label: host',
  );
  expect(derived).toContain('  - job_name: two\n    file_sd_configs:');
  expect(derived).toContain('    metrics_path: /m');
  expect(derived).not.toMatch(/x:1|y:2|a\.yml|team/);
  expect(derived.match(/file_sd_configs/g)).toHaveLength(2);
  expect(() =>
    deriveScrapeConfig('rule_files:\n  - a.yml\n', { targetsGlob: 'g', ruleFiles: [], interval: '1s' }),
  ).toThrow(/no static_configs/);
});

test('promtool accepts the derived config with its scaled rules', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-prom-'));
  try {
    const rules = path.join(dir, 'alerts.yml');
    fs.writeFileSync(rules, scaleRuleFor(ALERTS));
    const config = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(
      config,
      deriveScrapeConfig(PROMETHEUS, {
        targetsGlob: path.join(dir, '*.json'),
        ruleFiles: [rules],
        interval: '1s',
      }),
    );
    const checked = promtoolCheck(config);
    if (checked === null) throw new Error('promtool is not installed: run node scripts/test-tools.js');
    expect(checked.output).toMatch(/SUCCESS/);
    expect(checked.ok).toBe(true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every panel query of the dashboard is found, nested rows included', () => {
  const found = dashboardQueries(DASHBOARD);
  const raw = JSON.stringify(DASHBOARD).match(/"expr":/g) ?? [];
  expect(found).toHaveLength(raw.length);
  expect(found.length).toBeGreaterThan(10);
  expect(found[0]).toEqual({
    panel: expect.any(String),
    expr: expect.stringContaining('kafka_consumergroup_lag'),
  });
  const nested = {
    panels: [
      { title: 'row', panels: [{ title: 'inner', targets: [{ expr: 'up' }, { expr: ' ' }] }] },
      { title: 'text' },
    ],
  };
  expect(dashboardQueries(nested)).toEqual([{ panel: 'inner', expr: 'up' }]);
});

test('template variables become their all-value and the rate interval; an unknown one is refused', () => {
  const values = templateValues(DASHBOARD, '4s');
  expect(values.stage).toBe('.*');
  expect(values.datasource).toBeUndefined();
  expect(substitute('rate(x{stage=~"$stage"}[$__rate_interval])', values)).toBe('rate(x{stage=~".*"}[4s])');
  expect(substitute('y{a=~"${stage}",b=~"[[stage]]"}', values)).toBe('y{a=~".*",b=~".*"}');
  expect(() => substitute('z{t="$tenant"}', values)).toThrow(/uses \$tenant, which has no value/);
  // Every shipped query can be filled in.
  for (const q of dashboardQueries(DASHBOARD)) expect(substitute(q.expr, values)).not.toMatch(/\$|\[\[/);
  expect(
    templateValues({ templating: { list: [{ name: 'g', type: 'query', allValue: 'a|b' }] } }, '1m').g,
  ).toBe('a|b');
});

test('firing spans and the verdict: fired and resolved passes, never fired or still firing fails', () => {
  const series: PromSample[] = [
    {
      metric: { __name__: 'ALERTS', alertname: 'Lag', alertstate: 'firing', topic: 't', consumergroup: 'g' },
      values: [
        [110, '1'],
        [111, '1'],
        [140, '1'],
      ] as [number, string][],
    },
    {
      metric: { alertname: 'Down', alertstate: 'firing', instance: 'i' },
      values: [[199, '1']] as [number, string][],
    },
  ];
  const spans = firingSpans(series, 200, 1);
  expect(spans).toEqual([
    { alertname: 'Lag', labels: 'consumergroup=g,topic=t', firedAt: 110, lastFiringAt: 140, open: false },
    { alertname: 'Down', labels: 'instance=i', firedAt: 199, lastFiringAt: 199, open: true },
  ]);
  const ok = judgeAlerts(spans, ['Lag'], 100, 200);
  expect(ok.missing).toEqual([]);
  expect(ok.lines[0]).toBe('alert Lag fired at +10 s, resolved after +40 s (consumergroup=g,topic=t)');
  expect(ok.lines[1]).toMatch(/^alert Down fired at \+99 s, still firing when the processors were stopped/);
  expect(judgeAlerts(spans, ['Down', 'Stalled'], 100, 200).missing).toEqual([
    'Down did not resolve while the processor ran',
    'Stalled never fired',
  ]);
  expect(judgeAlerts([], [], 0, 1)).toEqual({ lines: ['no alert fired'], missing: [] });
});

test("alerts of an earlier scenario's arena are named apart and do not count for this one", () => {
  const mine = 'faults.r1.4.registry-down';
  const span = (alertname: string, labels: string) => ({
    alertname,
    labels,
    firedAt: 110,
    lastFiringAt: 120,
    open: false,
  });
  const spans = [
    span('Lag', `consumergroup=${mine}.lead-conversions,topic=${mine}.external.conversions.v1`),
    // registry-down-restart's arena shares the name's start: it is not this one.
    span('Down', 'arena=faults.r1.5.registry-down-restart,instance=i'),
    span('Letters', 'stage=faults.r1.3.bad-records.appointments'),
    span('Global', 'instance=i'),
  ];
  const v = judgeAlerts(spans, ['Lag', 'Down'], 100, 200, [mine]);
  expect(v.missing).toEqual(['Down never fired']);
  expect(v.lines).toEqual([
    `alert Lag fired at +10 s, resolved after +20 s (consumergroup=${mine}.lead-conversions,topic=${mine}.external.conversions.v1)`,
    'alert Global fired at +10 s, resolved after +20 s (instance=i)',
    "2 alert(s) of earlier scenarios' arenas still in the window, not counted: Down, Letters",
  ]);
  expect(alertOfArenas(`arena=${mine}`, [mine])).toBe(true);
  expect(alertOfArenas(`arena=${mine}-restart`, [mine])).toBe(false);
  // Under an application id a group is `<app>.<prefix>.<stage>`: still this arena's, not another's.
  expect(alertOfArenas(`consumergroup=prod.${mine}.lead-conversions`, [mine])).toBe(true);
  expect(alertOfArenas(`consumergroup=prod.${mine}-restart.lead-conversions`, [mine])).toBe(false);
});
