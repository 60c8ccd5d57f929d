// Reads topics the way a read_committed consumer downstream of Keyflow sees them, from their log starts
// to the ends captured at the start, then stops. The reports (`changes verify`, the fault suite's
// checks) read this way: "high minus low" would count a transactional topic's commit markers and
// aborted records too.
//
// The ends are the high watermarks, not the last stable offsets (log-ends.ts): a transaction left open
// by a killed producer holds the last stable offset back, and records other producers committed after
// it wait there until the coordinator aborts it. A reader that stopped at the last stable offset
// reported those committed changes missing (the fault suite's processor-sigkill on platformatic, whose
// transactional ids are per process, so nothing fences a dead member's transaction). So the read waits
// for every transaction open below the captured ends to end, up to `idleMs` without progress.
import type { Kafka } from 'kafkajs';
import { headersToStrings } from '../producers/headers';
import { endKey, logEnds, type LogEnds } from './log-ends';

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: string;
  value: Buffer | null;
  headers: Record<string, string>;
}

export interface ReadToEnds {
  /** Topics asked for that the brokers do not hold (nothing was read of them). */
  missing: string[];
  /**
   * `topic:partition read to X of Y` for each partition whose captured end was not reached, with the
   * last stable offset when a transaction still open holds the rest back.
   */
  shortOf: string[];
  /**
   * Partitions a transaction still open held back when the read began (last stable offset below the
   * high watermark), read past it once it ended: `topic:partition` with the offset it was held at.
   */
  heldAtStart: string[];
  /** How long the read took, waits for open transactions included. */
  readMs: number;
}

/**
 * How long a read waits without progress by default: longer than a Keyflow member's transaction can
 * stay open after it died (10 s on platformatic, whose transaction timeout is its request timeout) plus
 * the broker's 10 s scan for expired transactions. kafkajs members fence their predecessor's
 * transaction when they take its partition, so theirs end sooner.
 */
export const READ_IDLE_MS = 30_000;

/**
 * Calls `onRecord` for every committed record below the captured ends, in offset order per partition.
 * Stops once every end is reached, or after `idleMs` without progress; a throw from `onRecord` stops
 * the read and is thrown. Reads through a throwaway group `groupId` (kafkajs reads only through a
 * group), deleted after.
 */
export async function readCommittedToEnds(
  kafka: Kafka,
  topics: string[],
  onRecord: (r: ReadRecord) => Promise<void> | void,
  opts: { groupId: string; brokers: string[]; idleMs?: number },
): Promise<ReadToEnds> {
  const began = Date.now();
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = await logEnds(opts.brokers, topics);
    const heldAtStart = [...ends].filter(([, e]) => e.stable < e.high).map(([k, e]) => `${k}@${e.stable}`);
    // Every topic has a partition 0: a topic the brokers hold has that entry.
    const present = topics.filter((t) => ends.has(endKey(t, 0)));
    const next = new Map<string, number>();
    const end = new Map<string, number>();
    for (const [k, e] of ends) {
      next.set(k, Number(e.low));
      end.set(k, Number(e.high));
    }
    const open = () => [...end].filter(([k, e]) => next.get(k)! < e).map(([k]) => k);
    if (open().length > 0) {
      // read_committed is kafkajs's default (readUncommitted: false), spelled out because it is the point.
      const consumer = kafka.consumer({ groupId: opts.groupId, readUncommitted: false });
      await consumer.connect();
      try {
        // The idle clock starts once the consumer has joined: a join on a busy broker takes seconds.
        let lastProgress = Date.now() + 60_000;
        consumer.on(consumer.events.GROUP_JOIN, () => (lastProgress = Date.now()));
        // Commit markers and aborted records never reach eachBatch, yet take offsets: the batch's last
        // offset counts them (kafkajs reports a batch of nothing but markers too), so the end is reached.
        consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
          const k = endKey(payload.topic, payload.partition);
          const reached = Number(payload.lastOffset) + 1;
          if (reached > (next.get(k) ?? 0)) {
            next.set(k, reached);
            lastProgress = Date.now();
          }
        });
        let failure: unknown;
        for (const topic of present) await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachBatch: async ({ batch }) => {
            const k = endKey(batch.topic, batch.partition);
            for (const m of batch.messages) {
              if (Number(m.offset) >= end.get(k)! || failure !== undefined) break;
              try {
                await onRecord({
                  topic: batch.topic,
                  partition: batch.partition,
                  offset: m.offset,
                  value: m.value,
                  headers: headersToStrings(m.headers),
                });
              } catch (err) {
                failure ??= err;
              }
              next.set(k, Number(m.offset) + 1);
              lastProgress = Date.now();
            }
          },
        });
        const idleMs = opts.idleMs ?? READ_IDLE_MS;
        while (open().length > 0 && failure === undefined && Date.now() - lastProgress < idleMs) {
          await new Promise((r) => setTimeout(r, 100));
        }
        if (failure !== undefined) throw failure;
      } finally {
        await consumer.disconnect();
      }
    }
    const short = open();
    // Say why a partition stopped short: a transaction still open there, or no progress at all.
    const now: LogEnds =
      short.length > 0 ? await logEnds(opts.brokers, present).catch(() => new Map()) : new Map();
    return {
      missing: topics.filter((t) => !present.includes(t)),
      shortOf: short.map((k) => {
        const stable = now.get(k)?.stable;
        const held =
          stable !== undefined && Number(stable) < end.get(k)!
            ? ` (a transaction is still open: the last stable offset is ${stable})`
            : '';
        return `${k} read to ${next.get(k)} of ${end.get(k)}${held}`;
      }),
      heldAtStart,
      readMs: Date.now() - began,
    };
  } finally {
    await admin.deleteGroups([opts.groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}
