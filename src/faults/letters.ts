// The dead letters a fault scenario left, read back as a read_committed consumer sees them: in
// exactly-once mode a dead-letter topic is transactional, so its offsets also hold commit markers and
// aborted letters, and "high minus low" would count those too. Reads every stage's dead-letter topic to
// the ends captured first, counting only the letters delivered, and tallies their reasons.
import type { Kafka } from 'kafkajs';
import type { Arena } from '../bench/arena';
import { HEADERS, headersToStrings } from '../producers/headers';
import { dlqTopicName } from '../topology/define';

export interface DeadLetterTally {
  count: number;
  /** The five most frequent `code: message` reasons, with how often, most frequent first. */
  reasons: string[];
  /** Partitions whose captured end was not reached before the read went idle (10 s). */
  shortOf: string[];
}

export async function readDeadLetters(kafka: Kafka, arena: Arena, idleMs = 10_000): Promise<DeadLetterTally> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `${arena.prefix}.faults-dlq-reader`;
  try {
    const existing = new Set(await admin.listTopics());
    const topics = Object.values(arena.stages)
      .map((s) => dlqTopicName(s.name))
      .filter((t) => existing.has(t));
    // Per topic-partition: the next offset to read and the end captured now (the last stable offset).
    const next = new Map<string, number>();
    const end = new Map<string, number>();
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        next.set(`${topic}:${p.partition}`, Number(p.low));
        end.set(`${topic}:${p.partition}`, Number(p.high));
      }
    }
    const open = () => [...end].filter(([k, e]) => next.get(k)! < e).map(([k]) => k);
    const tally = new Map<string, number>();
    let count = 0;
    if (open().length > 0) {
      const consumer = kafka.consumer({ groupId, readUncommitted: false });
      await consumer.connect();
      try {
        let lastProgress = Date.now() + 60_000;
        consumer.on(consumer.events.GROUP_JOIN, () => (lastProgress = Date.now()));
        // Markers and aborted letters never reach eachBatch; the batch's last offset counts them.
        consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
          const k = `${payload.topic}:${payload.partition}`;
          const reached = Number(payload.lastOffset) + 1;
          if (reached > (next.get(k) ?? 0)) {
            next.set(k, reached);
            lastProgress = Date.now();
          }
        });
        for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachBatch: async ({ batch }) => {
            const k = `${batch.topic}:${batch.partition}`;
            for (const m of batch.messages) {
              if (Number(m.offset) >= end.get(k)!) break;
              const h = headersToStrings(m.headers);
              const why = `${h[HEADERS.DLQ_CODE] ?? '?'}: ${(h[HEADERS.DLQ_MESSAGE] ?? '').slice(0, 160)}`;
              tally.set(why, (tally.get(why) ?? 0) + 1);
              count++;
              next.set(k, Number(m.offset) + 1);
              lastProgress = Date.now();
            }
          },
        });
        while (open().length > 0 && Date.now() - lastProgress < idleMs) {
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await consumer.disconnect();
      }
    }
    const reasons = [...tally]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([why, n]) => `${n}× ${why}`);
    const shortOf = open().map((k) => `${k} read to ${next.get(k)} of ${end.get(k)}`);
    return { count, reasons, shortOf };
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}
