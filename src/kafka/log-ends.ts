// Where each partition of a topic ends, for a reader that must see everything already written before it
// stops (`changes verify`, the fault suite's checks). Three offsets per partition:
//  - `low`: the log start;
//  - `stable`: the last stable offset (ListOffsets asked read_committed), the most a read_committed
//    reader can reach now;
//  - `high`: the high watermark (asked read_uncommitted), the end of everything written.
// They differ while a transaction is open below the high watermark. A producer killed in the middle of
// a transaction leaves it open, and every record other producers commit after it waits behind it, until
// the coordinator aborts it: up to the transaction's timeout plus the broker's abort scan
// (`transaction.abort.timed.out.transaction.cleanup.interval.ms`, 10 s by default). A reader that stops at
// the last stable offset then misses those committed records.
//
// kafkajs's admin can only ask read_committed (its `fetchTopicOffsets` "high" is the last stable
// offset), so this asks through @platformatic/kafka's admin, whatever client the processor runs.
import { Admin, FetchIsolationLevels, ListOffsetTimestamps } from '@platformatic/kafka';
import { platformaticCall } from './platformatic-errors';
import { platformaticBase } from './platformatic-options';

export interface PartitionEnds {
  low: bigint;
  stable: bigint;
  high: bigint;
}

/** `topic:partition` → its ends, for every partition of the topics that exist; absent topics are left out. */
export type LogEnds = Map<string, PartitionEnds>;

export const endKey = (topic: string, partition: number) => `${topic}:${partition}`;

/**
 * ListOffsets at `timestamp` (EARLIEST, LATEST) for the given partitions of each topic, keyed by
 * endKey: with `committedOnly` the LATEST answer is the last stable offset, without it the high
 * watermark. The one place that asks, for this module and the adapter's offsets reader.
 */
export async function offsetsAt(
  admin: Admin,
  partitions: ReadonlyMap<string, readonly number[]>,
  timestamp: bigint,
  committedOnly: boolean,
): Promise<Map<string, bigint>> {
  const res = await admin.listOffsets({
    topics: [...partitions].map(([name, list]) => ({
      name,
      partitions: list.map((partitionIndex) => ({ partitionIndex, timestamp })),
    })),
    isolationLevel: committedOnly
      ? FetchIsolationLevels.READ_COMMITTED
      : FetchIsolationLevels.READ_UNCOMMITTED,
  });
  const got = new Map<string, bigint>();
  for (const t of res) for (const p of t.partitions) got.set(endKey(t.name, p.partitionIndex), p.offset);
  return got;
}

export async function logEnds(brokers: string[], topics: string[]): Promise<LogEnds> {
  const admin = new Admin(platformaticBase({ kafkaBrokers: brokers }, 'keyflow-log-ends'));
  try {
    return await platformaticCall(async () => {
      const existing = new Set(await admin.listTopics());
      const present = topics.filter((t) => existing.has(t));
      const out: LogEnds = new Map();
      if (present.length === 0) return out;
      const md = await admin.metadata({ topics: present, forceUpdate: true });
      const partitions = new Map(
        present.map((name) => [
          name,
          Array.from({ length: md.topics.get(name)?.partitionsCount ?? 0 }, (_, i) => i),
        ]),
      );
      const [low, stable, high] = await Promise.all([
        offsetsAt(admin, partitions, ListOffsetTimestamps.EARLIEST, false),
        offsetsAt(admin, partitions, ListOffsetTimestamps.LATEST, true),
        offsetsAt(admin, partitions, ListOffsetTimestamps.LATEST, false),
      ]);
      for (const [k, h] of high) out.set(k, { low: low.get(k) ?? 0n, stable: stable.get(k) ?? h, high: h });
      return out;
    });
  } finally {
    await admin.close().catch(() => undefined);
  }
}
