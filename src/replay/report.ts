// How replay results read: JSON for scripts and the API, a fixed-width table of differences for people,
// and a one-line summary for logs and alerts.
import type { SinceSummary } from './since';
import type { EntityReport } from './engine';
import type { ReplayProgress, ReplaySummary } from './full-pass';
import type { Difference } from './types';

export const COLUMNS = ['entity', 'table', 'row', 'field', 'expected', 'actual'] as const;

/** A value as one table cell: strings quoted (so "null" and null differ), dates as ISO text. */
export function formatValue(value: unknown, maxWidth = 40): string {
  let text: string;
  if (value === undefined || value === null) text = 'null';
  else if (value instanceof Date) text = Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  else if (typeof value === 'bigint') text = value.toString();
  else text = JSON.stringify(value) ?? String(value);
  return truncate(text, maxWidth);
}

export function truncate(text: string, maxWidth: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length <= maxWidth ? flat : `${flat.slice(0, Math.max(0, maxWidth - 1))}…`;
}

/** Differences as aligned columns with a header; long cells end in `…`. */
export function differencesTable(differences: readonly Difference[], maxWidth = 40): string {
  const rows = differences.map((d) => [
    truncate(d.entityId, maxWidth),
    truncate(d.table, maxWidth),
    truncate(d.row, maxWidth),
    truncate(d.field, maxWidth),
    formatValue(d.expected, maxWidth),
    formatValue(d.actual, maxWidth),
  ]);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(COLUMNS), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * What a replay pass shows after its counts: `950/s  ETA 1s  3 differing  shards 1/4`. The total is an
 * estimate: past it, or before any rate is known, an ETA would be a guess, so it reads `?`.
 */
export function progressDetail(
  p: Pick<ReplayProgress, 'checked' | 'total' | 'rate' | 'withDifferences' | 'shards' | 'shardsDone'>,
): string {
  const rate = `${Math.round(p.rate)}/s`;
  const tail = `${p.withDifferences} differing  shards ${p.shardsDone}/${p.shards}`;
  if (!p.total) return `${rate}  ${tail}`;
  const left = p.total - p.checked;
  const eta = left > 0 && p.rate > 0 ? formatDuration((left / p.rate) * 1000) : '?';
  return `${rate}  ETA ${eta}  ${tail}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function entitySummary(r: EntityReport): string {
  const differing = r.tables.filter((t) => t.found > 0).length;
  const parts = [
    `entity ${r.entityId}: ${plural(r.found.length, 'difference')} in ${differing} of ${plural(r.tables.length, 'table')}`,
  ];
  if (r.repair) {
    const repaired = r.tables.filter((t) => t.status === 'repaired').length;
    parts.push(`${repaired} repaired`, plural(r.conflicts.length, 'conflict'));
    parts.push(`${plural(r.differences.length, 'difference')} left`);
  }
  return `${parts.join(', ')} (${formatDuration(r.durationMs)})`;
}

export function runSummary(s: ReplaySummary): string {
  const parts = [
    `${plural(s.checked, 'entity', 'entities')} checked`,
    `${s.withDifferences} with differences (${plural(s.differences, 'difference')})`,
  ];
  if (s.repair) parts.push(`${s.repaired} repaired`, plural(s.conflicts, 'conflict'), `${s.remaining} left`);
  const rate = `${Math.round(s.rate)} entities/s`;
  return `replay run ${s.runId} ${s.status}${s.resumed ? ' (resumed)' : ''}: ${parts.join(', ')}; ${formatDuration(s.durationMs)}, ${rate}`;
}

/** The human report of one entity: its differences (as found, before any repair) and the summary. */
export function entityText(r: EntityReport, maxWidth = 40): string {
  const body = r.found.length ? `${differencesTable(r.found, maxWidth)}\n` : '';
  const conflicts = r.conflicts.map(
    (c) => `conflict: ${c.table} after ${c.attempts} attempts: ${c.message}\n`,
  );
  return `${body}${conflicts.join('')}${entitySummary(r)}`;
}

export function runText(s: ReplaySummary, maxWidth = 40): string {
  const lines: string[] = [];
  if (s.differenceList.length) {
    lines.push(differencesTable(s.differenceList, maxWidth));
    if (s.differences > s.differenceList.length) {
      lines.push(`… and ${s.differences - s.differenceList.length} more differences not listed`);
    }
  }
  for (const c of s.conflictList) {
    lines.push(`conflict: ${c.entityId} ${c.table} after ${c.attempts} attempts: ${c.message}`);
  }
  lines.push(runSummary(s));
  if (s.status === 'interrupted') lines.push(`resume with: keyflow replay --all --resume ${s.runId}`);
  return lines.join('\n');
}

/** A `--since` check: its differences and conflicts, then one summary line. */
export function sinceText(s: SinceSummary, maxWidth = 40): string {
  const lines: string[] = [];
  if (s.differenceList.length) lines.push(differencesTable(s.differenceList, maxWidth));
  if (s.differences > s.differenceList.length) {
    lines.push(`… and ${s.differences - s.differenceList.length} more differences not listed`);
  }
  for (const c of s.conflictList) {
    lines.push(`conflict: ${c.entityId} ${c.table} after ${c.attempts} attempts: ${c.message}`);
  }
  lines.push(
    `since ${s.since}: ${s.checked} entities touched and checked in ${(s.durationMs / 1000).toFixed(1)}s, ` +
      `${s.withDifferences} with differences (${s.differences} in all), ${s.repaired} repaired, ` +
      `${s.remaining} left, ${s.conflicts} conflicts${s.status === 'interrupted' ? ' (interrupted)' : ''}`,
  );
  if (s.skipped.length) lines.push(`not checked (no entity history; run --all): ${s.skipped.join(', ')}`);
  return lines.join('\n');
}

/** JSON as the CLI prints it; the API returns the same objects through fastify. */
export function toJson(value: EntityReport | ReplaySummary | SinceSummary): string {
  return JSON.stringify(value, null, 2);
}
