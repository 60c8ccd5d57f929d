// The dead letters a fault scenario left, read back as a read_committed consumer sees them: in
// exactly-once mode a dead-letter topic is transactional, so its offsets also hold commit markers and
// aborted letters, and "high minus low" would count those too. Reads every stage's dead-letter topic to
// the ends captured first, counting only the letters delivered, and tallies their reasons.
import type { Kafka } from 'kafkajs';
import type { Arena } from '../bench/arena';
import { readCommittedToEnds } from '../kafka/kafkajs-read-to-ends';
import { HEADERS } from '../producers/headers';
import { dlqTopicName } from '../topology/define';

export interface DeadLetterTally {
  count: number;
  /** The five most frequent `code: message` reasons, with how often, most frequent first. */
  reasons: string[];
  /** Partitions whose captured end was not reached before the read went idle (READ_IDLE_MS). */
  shortOf: string[];
}

export async function readDeadLetters(
  kafka: Kafka,
  brokers: string[],
  arena: Arena,
): Promise<DeadLetterTally> {
  const topics = Object.values(arena.stages).map((s) => dlqTopicName(s.name));
  const tally = new Map<string, number>();
  let count = 0;
  const { shortOf } = await readCommittedToEnds(
    kafka,
    topics,
    ({ headers: h }) => {
      const why = `${h[HEADERS.DLQ_CODE] ?? '?'}: ${(h[HEADERS.DLQ_MESSAGE] ?? '').slice(0, 160)}`;
      tally.set(why, (tally.get(why) ?? 0) + 1);
      count++;
    },
    { groupId: `${arena.prefix}.faults-dlq-reader`, brokers },
  );
  const reasons = [...tally]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([why, n]) => `${n}× ${why}`);
  return { count, reasons, shortOf };
}
