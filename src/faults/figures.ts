// The fault suite's figures, pure: what a scenario's tables say against the reducers' truth (events
// lost, duplicates applied, rows wrong otherwise), the one-line summary and the report table.
import { canonicalJson } from '../bench/correctness';
import type { AppointmentState } from '../appointments/reducer';
import type { ConversionRow } from '../conversions/reducer';
import type { Truth } from '../bench/events';

/** What one scenario measured. Times are milliseconds. */
export interface FaultFigures {
  scenario: string;
  /** Records published, upstream duplicates and late events included. */
  eventsIn: number;
  /** Effects found in the tables: appointment change rows plus conversions counted. */
  effectsOut: number;
  /** Effects the truth has and the tables lack. */
  lost: number;
  /** Effects the tables hold beyond the truth: an event applied twice. */
  duplicates: number;
  /** Entities present with the right count but a different state (order or content broken). */
  wrong: number;
  /** Input partitions whose committed offset never reached the end once the tables converged. */
  stalled: number;
  /** Records on the dead-letter topics (the event set holds no poison, so any is a fault). */
  deadLettered: number;
  /** Dead letters a scenario that injects bad records expects; unset means none. */
  expectedDeadLettered?: number;
  /** A scenario's own checks that did not hold (dead letters per reason, a skipped range reported). */
  failedChecks?: string[];
  /** Instances that exited by themselves and the suite had to start again: recovery was not by itself. */
  restarts: number;
  /** From the fault healed (service back, last instance restarted) to every effect applied; null if never. */
  recoverMs: number | null;
  /** What the scenario states beside the figures (a measured bound, the faults injected). */
  notes: string[];
  /**
   * Change records beyond one per event the tables applied, over the change topics read with
   * read_committed after the scenario (`changes verify`); unset when they could not be read.
   */
  duplicateChanges?: number;
  /**
   * Changes the topics owe the tables: applied events with no change, and rows whose changes do not
   * fold into the table; unset when they could not be read.
   */
  missingChanges?: number;
  /** Alerts the scenario should raise that did not fire and resolve on the suite's Prometheus. */
  alertFailures?: string[];
}

export interface TableContents {
  /** Appointment documents by id, as states. */
  appointments: Map<string, AppointmentState>;
  changeRows: number;
  conversions: ConversionRow[];
}

export interface TruthComparison {
  effectsOut: number;
  lost: number;
  duplicates: number;
  wrong: number;
  /** The first few wrong entities, table, id, what the table holds and what the truth says. */
  wrongSamples: string[];
}

const SAMPLES = 3;

const conversionKey = (r: Pick<ConversionRow, 'tenantId' | 'leadId' | 'conversionType'>) =>
  JSON.stringify([r.tenantId, r.leadId, r.conversionType]);

/**
 * Counts every difference between the tables and the truth as lost (too few effects), duplicated (too
 * many) or wrong (the right number of effects but another state). Change rows carry one effect per
 * distinct appointment event; a conversion row as many as its count.
 */
export function compareWithTruth(tables: TableContents, truth: Truth): TruthComparison {
  let lost = Math.max(0, truth.changeRows - tables.changeRows);
  let duplicates = Math.max(0, tables.changeRows - truth.changeRows);
  let wrong = 0;
  const wrongSamples: string[] = [];
  const sample = (what: string, got: unknown, want: unknown) => {
    if (wrongSamples.length < SAMPLES) {
      wrongSamples.push(`${what}: table ${canonicalJson(got ?? null)}, truth ${canonicalJson(want)}`);
    }
  };
  let effectsOut = tables.changeRows;
  for (const [id, want] of truth.appointments) {
    const got = tables.appointments.get(id);
    if (!got || canonicalJson(got) !== canonicalJson(want)) {
      wrong++;
      sample(`appointment ${id}`, got, want);
    }
  }
  for (const id of tables.appointments.keys()) if (!truth.appointments.has(id)) wrong++;
  const rows = new Map(tables.conversions.map((r) => [conversionKey(r), r]));
  for (const [key, want] of truth.conversions) {
    const got = rows.get(key);
    const count = got?.count ?? 0;
    if (count < want.count) lost += want.count - count;
    else if (count > want.count) duplicates += count - want.count;
    else if (
      got !== undefined &&
      (got.amount !== want.amount || got.firstAt !== want.firstAt || got.lastAt !== want.lastAt)
    ) {
      wrong++;
      const pick = (r: Pick<ConversionRow, 'amount' | 'firstAt' | 'lastAt'>) => ({
        amount: r.amount,
        firstAt: r.firstAt,
        lastAt: r.lastAt,
      });
      sample(`conversion row ${key}`, pick(got), pick(want));
    }
  }
  for (const [key, got] of rows) {
    effectsOut += got.count;
    if (!truth.conversions.has(key)) duplicates += got.count;
  }
  return { effectsOut, lost, duplicates, wrong, wrongSamples };
}

/**
 * Every figure the issue asks to end at zero is zero, and the scenario recovered. The change topics
 * count too: a scenario whose change topics were not read has not shown them exact, so it fails.
 */
export function passed(f: FaultFigures): boolean {
  return (
    f.duplicateChanges === 0 &&
    f.missingChanges === 0 &&
    f.lost === 0 &&
    f.duplicates === 0 &&
    f.wrong === 0 &&
    f.stalled === 0 &&
    f.deadLettered === (f.expectedDeadLettered ?? 0) &&
    (f.failedChecks ?? []).length === 0 &&
    f.restarts === 0 &&
    f.recoverMs !== null &&
    (f.alertFailures ?? []).length === 0
  );
}

export function seconds(ms: number | null): string {
  return ms === null ? 'never' : `${(ms / 1000).toFixed(1)} s`;
}

/** `broker-sigkill: PASS events in 9120, effects out 8400, duplicates applied 0, ...` */
export function summaryLine(f: FaultFigures): string {
  return (
    `${f.scenario}: ${passed(f) ? 'PASS' : 'FAIL'} events in ${f.eventsIn}, effects out ${f.effectsOut}, ` +
    `duplicates applied ${f.duplicates}, events lost ${f.lost}, wrong ${f.wrong}, ` +
    `dead-lettered ${f.deadLettered}, stalled partitions ${f.stalled}, instances restarted ${f.restarts}, ` +
    `time to recover ${seconds(f.recoverMs)}` +
    (f.duplicateChanges === undefined
      ? ''
      : `, duplicate changes ${f.duplicateChanges}, missing changes ${f.missingChanges ?? '–'}`)
  );
}

/** The Markdown table the results folder and the README carry, one row per scenario. */
export function reportTable(rows: readonly FaultFigures[]): string[] {
  const head = [
    'scenario',
    'result',
    'events in',
    'effects out',
    'lost',
    'duplicates applied',
    'wrong',
    'dead-lettered',
    'stalled partitions',
    'instances restarted',
    'time to recover',
    'duplicate changes',
    'missing changes',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const f of rows) {
    const cells = [
      f.scenario,
      passed(f) ? 'pass' : 'FAIL',
      f.eventsIn,
      f.effectsOut,
      f.lost,
      f.duplicates,
      f.wrong,
      f.deadLettered,
      f.stalled,
      f.restarts,
      seconds(f.recoverMs),
      f.duplicateChanges ?? '–',
      f.missingChanges ?? '–',
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines;
}
