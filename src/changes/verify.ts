// The changelog rule of a change topic, checked purely: per row, in partition order, each change's
// `before` equals the previous change's `after`, each event the table counted has its change exactly
// once, and the row's last change equals the table. `keyflow changes verify` feeds it what it read; the
// fault suite and the tests feed it the same shapes.
import { canonicalJson } from '../bench/correctness';

/** One change record as read, in the order its partition holds it. */
export interface ChangeEntry {
  /** The table row the change is about (a row's changes are all in one partition). */
  rowId: string;
  /** The `keyflow-event-id` header, or the record's own eventId when the header is absent. */
  eventId: string;
  partition: number;
  offset: string;
  before: unknown;
  after: unknown;
}

/** What the table holds for a row, in the shape of a change's `after`. */
export type TableState = Map<string, unknown>;

/**
 * How many events the table has applied to each row, so how many changes the topic owes it: a
 * conversions row's count, an appointment's change rows. Without it a row is only checked to fold.
 */
export type EventCounts = Map<string, number>;

export interface VerifyReport {
  changes: number;
  distinctEvents: number;
  rows: number;
  /** Copies: a change whose (row, event id) was seen before. */
  duplicates: number;
  /** Places where the rule breaks as the topic stands (a copy re-emitted after newer changes breaks it). */
  brokenChains: number;
  /** Breaks left once copies are dropped (first copy kept): a change missing or out of order. */
  gaps: number;
  /** Rows whose last change on the topic is not the table's row (what a keep-the-latest reader gets wrong). */
  lastDiffers: number;
  /** Rows the table holds that have no change at all. */
  rowsWithoutChange: number;
  /** Rows with changes that the table does not hold. */
  rowsNotInTable: number;
  /**
   * Distinct changes beyond the events the table applied to their row: an event's change emitted
   * again under another id (decided twice), or changes of a row the table lacks.
   */
  extra: number;
  /**
   * Changes the topic lacks: per row, the table's events with no distinct change, and at least one for
   * a row whose distinct changes do not fold into its table row (out of order, or ending elsewhere).
   * Without event counts, one per row that does not fold. Zero for a faithful changelog.
   */
  missing: number;
  /** A few row ids for each kind of problem. */
  examples: Record<ProblemKind, string[]>;
}

export type ProblemKind =
  'duplicates' | 'extra' | 'brokenChains' | 'gaps' | 'lastDiffers' | 'rowsWithoutChange' | 'rowsNotInTable';

export const PROBLEMS: readonly ProblemKind[] = [
  'duplicates',
  'extra',
  'brokenChains',
  'gaps',
  'lastDiffers',
  'rowsWithoutChange',
  'rowsNotInTable',
];

const EXAMPLES = 5;

const same = (a: unknown, b: unknown) => canonicalJson(a ?? null) === canonicalJson(b ?? null);

/**
 * Checks the changes against the table. `entries` must be in partition order within each partition
 * (the order between partitions does not matter: a row lives in one). With `counts`, changes missing
 * and changes beyond one per event are counted exactly; without, per row.
 */
export function verifyChanges(
  entries: Iterable<ChangeEntry>,
  table: TableState,
  counts?: EventCounts,
): VerifyReport {
  const report: VerifyReport = {
    changes: 0,
    distinctEvents: 0,
    rows: 0,
    duplicates: 0,
    brokenChains: 0,
    gaps: 0,
    lastDiffers: 0,
    rowsWithoutChange: 0,
    rowsNotInTable: 0,
    extra: 0,
    missing: 0,
    examples: Object.fromEntries(PROBLEMS.map((p) => [p, []])) as unknown as Record<ProblemKind, string[]>,
  };
  const note = (kind: ProblemKind, rowId: string) => {
    const list = report.examples[kind];
    if (list.length < EXAMPLES && !list.includes(rowId)) list.push(rowId);
  };
  interface RowTrack {
    seen: Set<string>;
    /** The last change's after as the topic stands, copies included. */
    lastRaw: unknown;
    /** The last distinct change's after. */
    lastDistinct: unknown;
    started: boolean;
    gapped: boolean;
  }
  const rows = new Map<string, RowTrack>();
  for (const e of entries) {
    report.changes++;
    let row = rows.get(e.rowId);
    if (!row) {
      row = { seen: new Set(), lastRaw: null, lastDistinct: null, started: false, gapped: false };
      rows.set(e.rowId, row);
    }
    if (!same(e.before, row.started ? row.lastRaw : null)) {
      report.brokenChains++;
      note('brokenChains', e.rowId);
    }
    row.lastRaw = e.after;
    if (row.seen.has(e.eventId)) {
      report.duplicates++;
      note('duplicates', e.rowId);
    } else {
      row.seen.add(e.eventId);
      report.distinctEvents++;
      if (!same(e.before, row.started ? row.lastDistinct : null)) {
        report.gaps++;
        row.gapped = true;
        note('gaps', e.rowId);
      }
      row.lastDistinct = e.after;
    }
    row.started = true;
  }
  report.rows = rows.size;
  for (const [rowId, row] of rows) {
    if (!table.has(rowId)) {
      // The table applied no event to this row: every distinct change of it is one too many.
      report.rowsNotInTable++;
      report.extra += row.seen.size;
      note('rowsNotInTable', rowId);
      continue;
    }
    const want = table.get(rowId);
    if (!same(row.lastRaw, want)) {
      report.lastDiffers++;
      note('lastDiffers', rowId);
    }
    const folds = !row.gapped && same(row.lastDistinct, want);
    const owed = counts?.get(rowId);
    const short = owed === undefined ? 0 : Math.max(0, owed - row.seen.size);
    report.missing += Math.max(short, folds ? 0 : 1);
    if (owed !== undefined && row.seen.size > owed) {
      report.extra += row.seen.size - owed;
      note('extra', rowId);
    }
  }
  for (const rowId of table.keys()) {
    if (rows.has(rowId)) continue;
    report.rowsWithoutChange++;
    report.missing += Math.max(1, counts?.get(rowId) ?? 1);
    note('rowsWithoutChange', rowId);
  }
  return report;
}

/** Any problem at all: the command's exit status. */
export function hasProblems(r: VerifyReport): boolean {
  return r.missing > 0 || PROBLEMS.some((p) => r[p] > 0);
}

const LABELS: Record<ProblemKind, string> = {
  duplicates: 'duplicate changes (same row and event id)',
  extra: "changes beyond the table's events for their row (another id)",
  brokenChains: 'broken before→after chains as the topic stands',
  gaps: 'broken chains once copies are dropped (gaps)',
  lastDiffers: 'rows whose last change differs from the table',
  rowsWithoutChange: 'rows in the table with no change',
  rowsNotInTable: 'rows with changes but not in the table',
};

/** The plain-text report: the counts, then each problem with a few row ids. */
export function reportText(topic: string, r: VerifyReport): string {
  const lines = [`${topic}: ${r.changes} changes, ${r.distinctEvents} distinct event ids, ${r.rows} rows`];
  for (const p of PROBLEMS) {
    const ex = r.examples[p].length ? `  e.g. ${r.examples[p].join(', ')}` : '';
    lines.push(`  ${String(r[p]).padStart(7)}  ${LABELS[p]}${ex}`);
  }
  lines.push(
    `  ${String(r.missing).padStart(7)}  changes missing (the table's events with no change on the topic)`,
  );
  lines.push(
    hasProblems(r)
      ? `FAIL: the topic is not a faithful changelog of the table: ${r.duplicates + r.extra} changes too many, ${r.missing} missing`
      : 'ok: each change once, chained before→after, each row ending at the table',
  );
  return lines.join('\n');
}
