// One delivery of the @platformatic/kafka member as the engine sees it (a ClientBatch): a partition's
// queued messages, how the engine commits them (plain, or in a transaction that carries the offset), and
// whether the member may still work on them. Also the message conversion and the redelivery delays.
import type { Message } from '@platformatic/kafka';
import type { WireRecord } from '../producers/types';
import type { KeyflowConsumer } from './platformatic-consumer';
import { platformaticCall } from './platformatic-errors';
import type { QueuedMessage } from './platformatic-queues';
import type { MemberTransactions } from './platformatic-transactions';
import type { ClientBatch } from './types';

/** A consumed message as the queue keeps it: headers as strings, its size for the byte bounds. */
export function toQueued(m: Message<Buffer, Buffer, Buffer, Buffer>): QueuedMessage {
  const headers: Record<string, string> = {};
  let bytes = (m.key?.length ?? 0) + (m.value?.length ?? 0);
  for (const [k, v] of m.headers) {
    headers[k.toString()] = v?.toString() ?? '';
    bytes += k.length + (v?.length ?? 0);
  }
  return { offset: m.offset, key: m.key ?? null, value: m.value ?? null, headers, bytes };
}

/** Delay before a batch the engine returned unfinished (without throwing) is delivered again. */
export const YIELD_PAUSE_MS = 50;

/** Delay before a partition whose delivery threw is delivered again: 200 ms doubling to 10 s. */
export function failureBackoff(failures: number): number {
  return Math.min(10_000, 200 * 2 ** Math.max(0, failures - 1));
}

/**
 * When a released batch's rest may be delivered again: after a backoff if it threw, after a pause if
 * the engine returned it unfinished, at once if nothing is left. Delivered again in the same run of
 * microtasks, a yielded batch starved the timers that send heartbeats, so the member stayed inactive
 * and looped for good (registry-down).
 */
export function redeliverAt(now: number, failures: number, rest: number): number {
  if (failures > 0) return now + failureBackoff(failures);
  return rest > 0 ? now + YIELD_PAUSE_MS : 0;
}

export interface BatchSource {
  topic: string;
  partition: number;
  messages: QueuedMessage[];
  /** The offset after everything this batch covers (control records after its last message included). */
  end: bigint;
  consumer: KeyflowConsumer;
  sessionTimeoutMs: number;
  /** The member still owns the partition under the assignment the batch was taken from. */
  owned: () => boolean;
  /** The member is neither stopping nor suspended for a group change. */
  working: () => boolean;
  tx: MemberTransactions | undefined;
}

/** The batch, and how far the engine committed it (undefined: nothing). */
export function platformaticBatch(s: BatchSource): {
  batch: ClientBatch;
  committed: () => bigint | undefined;
} {
  const { topic, partition, consumer, owned } = s;
  let committed: bigint | undefined;
  const tx = s.tx;
  const batch: ClientBatch = {
    topic,
    partition,
    messages: s.messages.map((m) => ({
      offset: m.offset.toString(),
      key: m.key,
      value: m.value,
      headers: m.headers,
    })),
    lag: 0,
    heartbeat: () => Promise.resolve(),
    active: () => {
      if (!s.working() || !owned()) return false;
      const beat = consumer.lastHeartbeat;
      return beat === null || Date.now() - beat.getTime() < s.sessionTimeoutMs / 2;
    },
    commit: async (next) => {
      await platformaticCall(() =>
        consumer.commit({ offsets: [{ topic, partition, offset: BigInt(next), leaderEpoch: -1 }] }),
      );
      committed = BigInt(next);
    },
    end: s.end.toString(),
    ...(tx
      ? {
          transact: async (records: WireRecord[], next: string) => {
            await tx.transact(topic, partition, records, next, owned);
            committed = BigInt(next);
          },
        }
      : {}),
  };
  return { batch, committed: () => committed };
}
