// Read-committed filtering of aborted transactions for @platformatic/kafka 2.12, applied to each
// fetch answer before the library's own. The library keeps one aborted range per producer id (a
// second aborted transaction of the same transactional id overwrites the first) and shows a range
// whose abort marker is not in the same answer, so a read_committed member saw aborted records.
// This is the Java consumer's walk: a producer listed as aborted from its first offset on has its
// transactional batches dropped until its abort marker.
import { connectionsApiChannel, fetchV17 } from '@platformatic/kafka';

const IS_TRANSACTIONAL = 1 << 4;
const IS_CONTROL = 1 << 5;

export interface FetchedBatch {
  firstOffset: bigint;
  lastOffsetDelta: number;
  producerId: bigint;
  attributes: number;
  records: { key?: Buffer | null }[];
}

export interface FetchedPartition {
  records?: FetchedBatch[] | null;
  abortedTransactions?: { producerId: bigint; firstOffset: bigint }[] | null;
}

/** A control batch's key is version (int16) then type (int16): 0 aborts, 1 commits. */
const isAbortMarker = (b: FetchedBatch) => b.records[0]?.key?.readInt16BE(2) === 0;

/** Drops the partition's aborted transactional batches (control batches stay: offsets advance past them). */
export function dropAborted(partition: FetchedPartition): void {
  const listed = partition.abortedTransactions ?? [];
  if (listed.length === 0 || !partition.records) return;
  const aborted = [...listed].sort((a, b) =>
    a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0,
  );
  const open = new Set<bigint>();
  let next = 0;
  partition.records = partition.records.filter((batch) => {
    const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
    while (next < aborted.length && aborted[next]!.firstOffset <= last) open.add(aborted[next++]!.producerId);
    if (batch.attributes & IS_CONTROL) {
      if (isAbortMarker(batch)) open.delete(batch.producerId);
      return true;
    }
    return !(batch.attributes & IS_TRANSACTIONAL && open.has(batch.producerId));
  });
  // Nothing left for the library's own filter to get wrong.
  partition.abortedTransactions = [];
}

const FETCH = fetchV17.api.key;

function onAnswer(message: unknown): void {
  const ctx = message as { apiKey?: number; result?: { responses?: { partitions?: FetchedPartition[] }[] } };
  if (ctx.apiKey !== FETCH) return;
  for (const topic of ctx.result?.responses ?? []) for (const p of topic.partitions ?? []) dropAborted(p);
}

let installed = false;

/** Subscribes the filter once per process: every fetch answer passes the channel before it is applied. */
export function filterAbortedTransactions(): void {
  if (installed) return;
  installed = true;
  connectionsApiChannel.asyncStart.subscribe(onAnswer);
}
