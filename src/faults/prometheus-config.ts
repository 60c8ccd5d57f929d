// What the fault suite's Prometheus runs, derived from the files we ship rather than written beside
// them: deploy/prometheus/prometheus.yml with only its targets, intervals and rule path rewritten,
// alerts.yml with only each `for:` scaled from minutes to seconds, and the PromQL of the Grafana
// dashboard with its template variables filled in. Pure text work, so a unit test pins each rewrite.
import { KeyflowError } from '../errors';

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** `10m` → `10s`: a duration divided by sixty, written in whole seconds (at least 1s). */
export function scaleDuration(value: string): string {
  const m = DURATION.exec(value);
  if (!m) throw new KeyflowError('USAGE', `cannot scale the rule duration "${value}"`);
  const seconds = (Number(m[1]) * SECONDS[m[2]!]!) / 60;
  return `${Math.max(1, Math.round(seconds))}s`;
}

/**
 * The rule file with every `for:` scaled from minutes to seconds (1m → 1s, 10m → 10s), so an alert
 * that waits ten minutes in production fires within a fault scenario. Nothing else changes: not the
 * expressions, not their range windows, not the labels.
 */
export function scaleRuleFor(rules: string): string {
  let n = 0;
  const out = rules.replace(/^(\s+for:\s*)(\S+)\s*$/gm, (_all, head: string, value: string) => {
    n++;
    return `${head}${scaleDuration(value.replace(/^['"]|['"]$/g, ''))}`;
  });
  if (n === 0) throw new KeyflowError('USAGE', 'the rule file has no `for:` to scale');
  return out;
}

export interface ScrapeRewrite {
  /** Glob of the file-based service discovery files the suite writes, one per running processor. */
  targetsGlob: string;
  /** The rule files Prometheus loads instead of the ones prometheus.yml names, in the same order. */
  ruleFiles: string[];
  /** Scrape and evaluation interval, e.g. `1s`. */
  interval: string;
}

const indentOf = (line: string) => /^\s*/.exec(line)![0].length;

/**
 * prometheus.yml with its scrape and evaluation intervals set to `interval`, every `static_configs`
 * block replaced by a `file_sd_configs` on `targetsGlob`, and its `rule_files` entries replaced by
 * `ruleFiles`. Job names, relabelling and everything else stay as written.
 */
export function deriveScrapeConfig(prom: string, rw: ScrapeRewrite): string {
  const lines = prom.split('\n');
  const out: string[] = [];
  let statics = 0;
  let rules = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const interval = /^(\s*(?:scrape|evaluation)_interval:\s*)\S+\s*$/.exec(line);
    if (interval) {
      out.push(`${interval[1]}${rw.interval}`);
      continue;
    }
    const block = /^(\s*)(-\s+)?(static_configs|rule_files):\s*$/.exec(line);
    if (!block) {
      out.push(line);
      continue;
    }
    // Skip the block's body: the lines indented deeper than its key (or list items at its level,
    // as YAML allows for a sequence under a mapping key).
    const at = indentOf(line) + (block[2]?.length ?? 0);
    let j = i + 1;
    while (j < lines.length) {
      const next = lines[j]!;
      if (next.trim() !== '' && indentOf(next) < at) break;
      if (next.trim() !== '' && indentOf(next) === at && !next.trim().startsWith('- ')) break;
      j++;
    }
    while (j > i + 1 && lines[j - 1]!.trim() === '') j--;
    const pad = ' '.repeat(at);
    if (block[3] === 'static_configs') {
      statics++;
      out.push(
        `${block[1]}${block[2] ?? ''}file_sd_configs:`,
        `${pad}  - files: ['${rw.targetsGlob}']`,
        `${pad}    refresh_interval: ${rw.interval}`,
      );
    } else {
      rules++;
      out.push(`${block[1]}${block[2] ?? ''}rule_files:`, ...rw.ruleFiles.map((f) => `${pad}  - '${f}'`));
    }
    i = j - 1;
  }
  if (statics === 0) throw new KeyflowError('USAGE', 'prometheus.yml has no static_configs to rewrite');
  if (rules === 0) throw new KeyflowError('USAGE', 'prometheus.yml has no rule_files to rewrite');
  return out.join('\n');
}

export interface DashboardQuery {
  /** Title of the panel the query belongs to. */
  panel: string;
  expr: string;
}

interface Panel {
  title?: string;
  panels?: Panel[];
  targets?: { expr?: string }[];
}

/** Every PromQL expression of the dashboard's panels (rows' nested panels included), in order. */
export function dashboardQueries(dashboard: { panels?: Panel[] }): DashboardQuery[] {
  const found: DashboardQuery[] = [];
  const walk = (panels: Panel[] | undefined) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) {
        if (typeof t.expr === 'string' && t.expr.trim() !== '')
          found.push({ panel: p.title ?? '?', expr: t.expr });
      }
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  return found;
}

interface TemplateVar {
  name: string;
  type?: string;
  allValue?: string;
  includeAll?: boolean;
}

/**
 * Values for the dashboard's template variables as the suite queries them: a variable that offers
 * "All" takes its all-value (`.*` when none is given, as Grafana does with a regex matcher), and
 * Grafana's interval variables take `rateInterval`. A data-source variable names no PromQL.
 */
export function templateValues(
  dashboard: { templating?: { list?: TemplateVar[] } },
  rateInterval: string,
): Record<string, string> {
  const values: Record<string, string> = {
    __rate_interval: rateInterval,
    __interval: rateInterval,
    __range: rateInterval,
  };
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type === 'datasource') continue;
    values[v.name] = v.allValue ?? '.*';
  }
  return values;
}

/** The expression with `$name`, `${name}` and `[[name]]` replaced; an unknown variable is refused. */
export function substitute(expr: string, values: Record<string, string>): string {
  return expr.replace(
    /\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g,
    (_all, a?: string, b?: string, c?: string) => {
      const name = (a ?? b ?? c)!;
      const value = values[name];
      if (value === undefined) {
        throw new KeyflowError(
          'USAGE',
          `the dashboard query "${expr}" uses $${name}, which has no value to test it with`,
        );
      }
      return value;
    },
  );
}
