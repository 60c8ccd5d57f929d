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
import { appointments } from '../appointments/tables';
import { KeyflowError } from '../errors';
import { HEADERS, headersToStrings } from '../producers/headers';
import { verifyChanges, type ChangeEntry, type TableState, type VerifyReport } from './verify';

const APPOINTMENT_CHANGES = 'changes.appointments.v1';

/** How one change topic maps to its table: the row a change is about, and the table's rows as `after`s. */
interface ChangeSource {
  rowIdOf(change: Record<string, unknown>): string;
  table(db: Db): Promise<TableState>;
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
      const rows = await rowsOf(db).find({}).toArray();
      return new Map(
        rows.map((r) => [
          rowIdOf(r),
          { count: r.count, amount: r.amount, firstAt: r.firstAt, lastAt: r.lastAt },
        ]),
      );
    },
  },
  [APPOINTMENT_CHANGES]: {
    rowIdOf: (c) => String(c.appointmentId),
    async table(db) {
      const docs = await appointments(db).find({}).toArray();
      return new Map(docs.map((d) => [d._id, snapshotOf(stateOf(d))]));
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
  registryUrl: string;
  /** `user:password` for the registry's basic auth (SCHEMA_REGISTRY_AUTH). */
  registryAuth?: string;
  db: Db;
  topic: string;
  /** Stop reading after this long without a new record though a partition's end is not reached. */
  idleMs?: number;
}

export interface ReadResult {
  report: VerifyReport;
  /** Partitions whose captured end was not reached (control records or an uncommitted tail). */
  shortOf: string[];
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
  const admin = opts.kafka.admin();
  await admin.connect();
  const groupId = `keyflow-changes-verify-${randomUUID()}`;
  try {
    if (!(await admin.listTopics()).includes(opts.topic)) {
      throw new KeyflowError(
        'TOPIC_UNKNOWN',
        `topic "${opts.topic}" does not exist on the brokers; is KAFKA_BROKERS the cluster that holds it?`,
      );
    }
    const ends = await admin.fetchTopicOffsets(opts.topic);
    const next = new Map<number, number>();
    const high = new Map<number, number>();
    for (const e of ends) {
      next.set(e.partition, Number(e.low));
      high.set(e.partition, Number(e.high));
    }
    const entries: ChangeEntry[] = [];
    const open = () => [...high].filter(([p, h]) => next.get(p)! < h).map(([p]) => p);
    if (open().length > 0) {
      // A throwaway group, deleted below: kafkajs reads only through a group. read_committed is its
      // default (readUncommitted: false), spelled out because it is the point.
      const consumer = opts.kafka.consumer({ groupId, readUncommitted: false });
      await consumer.connect();
      try {
        // The idle clock starts once the consumer has joined: a join on a busy broker takes seconds.
        let lastRecordAt = Date.now() + 60_000;
        consumer.on(consumer.events.GROUP_JOIN, () => {
          lastRecordAt = Date.now();
        });
        let failure: unknown;
        await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
        await consumer.run({
          eachBatch: async ({ batch }) => {
            const end = high.get(batch.partition)!;
            for (const m of batch.messages) {
              const offset = Number(m.offset);
              if (offset >= end) break;
              try {
                const value = (await registry.decode(m.value!)) as Record<string, unknown>;
                const h = headersToStrings(m.headers);
                entries.push({
                  rowId: source.rowIdOf(value),
                  eventId: h[HEADERS.EVENT_ID] ?? String(value.eventId),
                  partition: batch.partition,
                  offset: m.offset,
                  before: value.before ?? null,
                  after: value.after,
                });
              } catch (err) {
                failure ??= err;
              }
              next.set(batch.partition, offset + 1);
              lastRecordAt = Date.now();
            }
          },
        });
        const idleMs = opts.idleMs ?? 10_000;
        while (open().length > 0 && failure === undefined && Date.now() - lastRecordAt < idleMs) {
          await new Promise((r) => setTimeout(r, 100));
        }
        if (failure !== undefined) throw failure;
      } finally {
        await consumer.disconnect();
      }
    }
    const shortOf = open().map((p) => `partition ${p} read to ${next.get(p)} of ${high.get(p)}`);
    // Each partition in its own order; between partitions order does not matter to the rule.
    entries.sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset));
    const table = await source.table(opts.db);
    return { report: verifyChanges(entries, table), shortOf };
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

export interface ChangeFigures {
  /** Copies over every change topic: changes minus distinct (row, event id) pairs. */
  duplicateChanges: number;
  /** Rows whose changes, copies dropped, do not fold into the table (gap, none, or another last state). */
  missingChanges: number;
  /** One line per topic: its counts, and examples of what broke. */
  lines: string[];
}

/** The fault suite's check: each change topic of an arena read with read_committed and verified. */
export async function verifyOutputs(
  kafka: Kafka,
  registryUrl: string,
  db: Db,
  topics: readonly string[],
): Promise<ChangeFigures> {
  const out: ChangeFigures = { duplicateChanges: 0, missingChanges: 0, lines: [] };
  for (const topic of topics) {
    const { report: r, shortOf } = await verifyTopic({ kafka, registryUrl, db, topic });
    out.duplicateChanges += r.duplicates;
    out.missingChanges += r.missing;
    const ex = (['duplicates', 'gaps', 'lastDiffers'] as const)
      .filter((p) => r.examples[p].length)
      .map((p) => `${p} e.g. ${r.examples[p].slice(0, 2).join(' ')}`);
    out.lines.push(
      `changes ${topic.split('.').slice(-2).join('.')} (read_committed): ${r.changes} changes, ${r.distinctEvents} distinct events, ${r.duplicates} duplicates, ${r.brokenChains} broken chains, ${r.gaps} gaps, ${r.lastDiffers} of ${r.rows} rows' last change differs from the table, ${r.rowsWithoutChange} table rows without a change${ex.length ? `; ${ex.join('; ')}` : ''}${shortOf.length ? `; not read to the end: ${shortOf.join(', ')}` : ''}`,
    );
  }
  return out;
}
