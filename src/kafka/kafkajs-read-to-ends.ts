// Reads topics the way a read_committed consumer downstream of Keyflow sees them, from their log starts
// to the ends captured at the start (the last stable offsets), then stops. The reports (`changes
// verify`, the fault suite's dead-letter tally) read this way: "high minus low" would count a
// transactional topic's commit markers and aborted records too.
import type { Kafka } from 'kafkajs';
import { headersToStrings } from '../producers/headers';

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
  /** `topic:partition read to X of Y` for each partition whose captured end was not reached. */
  shortOf: string[];
}

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
  opts: { groupId: string; idleMs?: number },
): Promise<ReadToEnds> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const present = topics.filter((t) => existing.has(t));
    const next = new Map<string, number>();
    const end = new Map<string, number>();
    for (const topic of present)
      for (const p of await admin.fetchTopicOffsets(topic)) {
        next.set(`${topic}:${p.partition}`, Number(p.low));
        end.set(`${topic}:${p.partition}`, Number(p.high));
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
          const k = `${payload.topic}:${payload.partition}`;
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
            const k = `${batch.topic}:${batch.partition}`;
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
        const idleMs = opts.idleMs ?? 10_000;
        while (open().length > 0 && failure === undefined && Date.now() - lastProgress < idleMs) {
          await new Promise((r) => setTimeout(r, 100));
        }
        if (failure !== undefined) throw failure;
      } finally {
        await consumer.disconnect();
      }
    }
    return {
      missing: topics.filter((t) => !existing.has(t)),
      shortOf: open().map((k) => `${k} read to ${next.get(k)} of ${end.get(k)}`),
    };
  } finally {
    await admin.deleteGroups([opts.groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}
