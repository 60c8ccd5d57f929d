// Reads a change topic as an analytics consumer would — read_committed, from the beginning, decoded
// with nothing but the registry's writer schemas — up to the ends captured at start, and the table it
// mirrors, then hands both to the pure check in verify.ts.
import { randomUUID } from 'node:crypto';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import type { Db } from 'mongodb';
import { stateOf } from '../appointments/decide';
import { snapshotOf } from '../appointments/reducer';
import { CHANGES_TOPIC as CONVERSION_CHANGES } from '../conversions/schemas';
import { rowIdOf } from '../conversions/reducer';
import { rowsOf } from '../conversions/store';
import { appointments, changes as appointmentChanges } from '../appointments/tables';
import { KeyflowError } from '../errors';
import { readCommittedToEnds } from '../kafka/kafkajs-read-to-ends';
import { HEADERS } from '../producers/headers';
import {
  verifyChanges,
  type ChangeEntry,
  type EventCounts,
  type TableState,
  type VerifyReport,
} from './verify';

const APPOINTMENT_CHANGES = 'changes.appointments.v1';

/**
 * How one change topic maps to its table: the row a change is about, the table's rows as `after`s, and
 * how many events the table applied to each row (the changes the topic owes it).
 */
interface ChangeSource {
  rowIdOf(change: Record<string, unknown>): string;
  table(db: Db): Promise<{ rows: TableState; events: EventCounts }>;
}

const SOURCES: Record<string, ChangeSource> = {
  [CONVERSION_CHANGES]: {
    rowIdOf: (c) =>
      rowIdOf({
        tenantId: String(c.tenantId),
        leadId: String(c.leadId),
        conversionType: String(c.conversionType),
      }),
    async table(db) {
      const docs = await rowsOf(db).find({}).toArray();
      return {
        rows: new Map(
          docs.map((r) => [
            rowIdOf(r),
            { count: r.count, amount: r.amount, firstAt: r.firstAt, lastAt: r.lastAt },
          ]),
        ),
        // A row counts each event once, and each counted event has one change.
        events: new Map(docs.map((r) => [rowIdOf(r), r.count])),
      };
    },
  },
  [APPOINTMENT_CHANGES]: {
    rowIdOf: (c) => String(c.appointmentId),
    async table(db) {
      const docs = await appointments(db).find({}).toArray();
      // Every applied event has a change row, a late one that changed nothing included, and each
      // change row is one change on the topic. A report's read of the whole table, never the hot path.
      const perAppointment = await appointmentChanges(db)
        .aggregate<{ _id: string; n: number }>([{ $group: { _id: '$appointmentId', n: { $sum: 1 } } }])
        .toArray();
      return {
        rows: new Map(docs.map((d) => [d._id, snapshotOf(stateOf(d))])),
        events: new Map(perAppointment.map((g) => [g._id, g.n])),
      };
    },
  },
};

export const KNOWN_CHANGE_TOPICS = Object.keys(SOURCES);

/** The source of a topic named exactly, or under a prefix (`<prefix>.changes.…`, as tests and rigs name them). */
export function sourceOf(topic: string): ChangeSource {
  const name = KNOWN_CHANGE_TOPICS.find((n) => topic === n || topic.endsWith(`.${n}`));
  if (!name) {
    throw new KeyflowError(
      'USAGE',
      `"${topic}" is not a change topic Keyflow knows; give one of ${KNOWN_CHANGE_TOPICS.join(', ')}`,
    );
  }
  return SOURCES[name]!;
}

export interface ReadOptions {
  kafka: Kafka;
  /** The same cluster's bootstrap brokers: the ends to read to are asked through them (log-ends.ts). */
  brokers: string[];
  registryUrl: string;
  /** `user:password` for the registry's basic auth (SCHEMA_REGISTRY_AUTH). */
  registryAuth?: string;
  db: Db;
  topic: string;
  /**
   * Stop reading after this long without a new record though a partition's end is not reached
   * (default READ_IDLE_MS, 30 s: a dead producer's open transaction holds a partition back that long).
   */
  idleMs?: number;
}

export interface ReadResult {
  report: VerifyReport;
  /** Partitions whose captured end was not reached (control records or an uncommitted tail). */
  shortOf: string[];
  /** Partitions an open transaction held back when the read began (see readCommittedToEnds). */
  heldAtStart: string[];
  readMs: number;
}

/** Reads the topic to the ends captured now, reads the table, and checks the rule. */
export async function verifyTopic(opts: ReadOptions): Promise<ReadResult> {
  const source = sourceOf(opts.topic);
  const at = opts.registryAuth?.indexOf(':') ?? -1;
  const auth =
    opts.registryAuth && at > 0
      ? { username: opts.registryAuth.slice(0, at), password: opts.registryAuth.slice(at + 1) }
      : undefined;
  const registry = new SchemaRegistry({
    host: opts.registryUrl,
    clientId: 'keyflow-changes-verify',
    ...(auth ? { auth } : {}),
  });
  const entries: ChangeEntry[] = [];
  const { missing, shortOf, heldAtStart, readMs } = await readCommittedToEnds(
    opts.kafka,
    [opts.topic],
    async (m) => {
      const value = (await registry.decode(m.value!)) as Record<string, unknown>;
      entries.push({
        rowId: source.rowIdOf(value),
        eventId: m.headers[HEADERS.EVENT_ID] ?? String(value.eventId),
        partition: m.partition,
        offset: m.offset,
        before: value.before ?? null,
        after: value.after,
      });
    },
    {
      groupId: `keyflow-changes-verify-${randomUUID()}`,
      brokers: opts.brokers,
      ...(opts.idleMs ? { idleMs: opts.idleMs } : {}),
    },
  );
  if (missing.length > 0) {
    throw new KeyflowError(
      'TOPIC_UNKNOWN',
      `topic "${opts.topic}" does not exist on the brokers; is KAFKA_BROKERS the cluster that holds it?`,
    );
  }
  // Each partition in its own order; between partitions order does not matter to the rule.
  entries.sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset));
  const table = await source.table(opts.db);
  return { report: verifyChanges(entries, table.rows, table.events), shortOf, heldAtStart, readMs };
}

export interface ChangeFigures {
  /**
   * Changes beyond one per event the tables applied, over every change topic: copies of a (row, event
   * id), and distinct changes past a row's event count.
   */
  duplicateChanges: number;
  /** Changes the topics owe the tables: events with no change, and rows whose changes do not fold. */
  missingChanges: number;
  /** Each topic's full report, by topic. */
  reports: Record<string, VerifyReport>;
  /** One line per topic: its counts, and examples of what broke. */
  lines: string[];
}

/** The fault suite's check: each change topic of an arena read with read_committed and verified. */
export async function verifyOutputs(
  kafka: Kafka,
  brokers: string[],
  registryUrl: string,
  db: Db,
  topics: readonly string[],
): Promise<ChangeFigures> {
  const out: ChangeFigures = { duplicateChanges: 0, missingChanges: 0, reports: {}, lines: [] };
  for (const topic of topics) {
    const {
      report: r,
      shortOf,
      heldAtStart,
      readMs,
    } = await verifyTopic({
      kafka,
      brokers,
      registryUrl,
      db,
      topic,
    });
    // An open transaction at the start (a killed member's, until the broker aborts it) is waited for.
    const held = heldAtStart.length
      ? `; read in ${(readMs / 1000).toFixed(1)} s, past ${heldAtStart.length} partition(s) an open transaction held (${heldAtStart.join(', ')})`
      : '';
    out.reports[topic] = r;
    out.duplicateChanges += r.duplicates + r.extra;
    // A partition not read to its end may hold what looks missing: it counts as missing, never as fine.
    out.missingChanges += r.missing + shortOf.length;
    const ex = (['duplicates', 'extra', 'gaps', 'lastDiffers'] as const)
      .filter((p) => r.examples[p].length)
      .map((p) => `${p} e.g. ${r.examples[p].slice(0, 2).join(' ')}`);
    out.lines.push(
      `changes ${topic.split('.').slice(-2).join('.')} (read_committed): ${r.changes} changes, ${r.distinctEvents} distinct events, ${r.duplicates} duplicates, ${r.extra} extra, ${r.missing} missing, ${r.brokenChains} broken chains, ${r.gaps} gaps, ${r.lastDiffers} of ${r.rows} rows' last change differs from the table, ${r.rowsWithoutChange} table rows without a change${ex.length ? `; ${ex.join('; ')}` : ''}${shortOf.length ? `; not read to the end: ${shortOf.join(', ')}` : ''}${held}`,
    );
  }
  return out;
}
