// What the @platformatic/kafka member holds between the library's message stream (one flow of all
// assigned partitions) and the engine (a batch of one partition at a time): a queue per partition in
// offset order, which partitions wait for a worker, and the bytes held. Pure: the member drives it.

export interface QueuedMessage {
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  bytes: number;
}

interface PartitionQueue {
  topic: string;
  partition: number;
  messages: QueuedMessage[];
  /** The next offset this queue expects: anything below it was already queued (a refetch). */
  next: bigint | undefined;
  busy: boolean;
  /** Not before this time (ms): a partition whose delivery failed waits out its backoff. */
  notBefore: number;
}

export const partitionKey = (topic: string, partition: number) => `${topic}:${partition}`;

export class PartitionQueues {
  private readonly queues = new Map<string, PartitionQueue>();
  private held = 0;

  /** Bytes of queued messages not yet taken by a worker. */
  get bytes(): number {
    return this.held;
  }

  private queue(topic: string, partition: number): PartitionQueue {
    const key = partitionKey(topic, partition);
    let q = this.queues.get(key);
    if (!q)
      this.queues.set(
        key,
        (q = { topic, partition, messages: [], next: undefined, busy: false, notBefore: 0 }),
      );
    return q;
  }

  /** Appends one message; a message below the queue's next offset (fetched again) is dropped. */
  push(topic: string, partition: number, m: QueuedMessage): boolean {
    const q = this.queue(topic, partition);
    if (q.next !== undefined && m.offset < q.next) return false;
    q.messages.push(m);
    q.next = m.offset + 1n;
    this.held += m.bytes;
    return true;
  }

  /**
   * Takes the queued messages of the first ready partition (not busy, backoff over), up to
   * `maxBytes` (at least one message), and marks it busy. Undefined when none is ready.
   */
  take(maxBytes: number, now: number, eligible: (topic: string, partition: number) => boolean) {
    for (const q of this.queues.values()) {
      if (q.busy || q.messages.length === 0 || q.notBefore > now || !eligible(q.topic, q.partition)) continue;
      let size = 0;
      let n = 0;
      while (n < q.messages.length && (n === 0 || size + q.messages[n]!.bytes <= maxBytes)) {
        size += q.messages[n]!.bytes;
        n++;
      }
      const messages = q.messages.splice(0, n);
      this.held -= size;
      q.busy = true;
      // Round robin: the partition goes to the back of the map's order.
      this.queues.delete(partitionKey(q.topic, q.partition));
      this.queues.set(partitionKey(q.topic, q.partition), q);
      return { topic: q.topic, partition: q.partition, messages, rest: q.messages.length };
    }
    return undefined;
  }

  /**
   * A worker is done with a partition. `rest` (the delivered messages not committed) goes back to
   * the front, to be delivered again; `backoffUntil` delays that.
   */
  release(topic: string, partition: number, rest: QueuedMessage[] = [], backoffUntil = 0): void {
    const q = this.queue(topic, partition);
    q.busy = false;
    q.notBefore = backoffUntil;
    if (rest.length === 0) return;
    q.messages.unshift(...rest);
    this.held += rest.reduce((s, m) => s + m.bytes, 0);
  }

  /** Forgets every partition `keep` says no to (revoked): their messages belong to the next owner. */
  retain(keep: (topic: string, partition: number) => boolean): void {
    for (const [key, q] of this.queues) {
      if (keep(q.topic, q.partition)) continue;
      this.held -= q.messages.reduce((s, m) => s + m.bytes, 0);
      q.messages = [];
      q.next = undefined;
      if (!q.busy) this.queues.delete(key);
    }
  }

  /** Drops a partition's queue and position, so the next fetch (from its committed offset) starts it over. */
  reset(topic: string, partition: number): void {
    const q = this.queues.get(partitionKey(topic, partition));
    if (!q) return;
    this.held -= q.messages.reduce((s, m) => s + m.bytes, 0);
    q.messages = [];
    q.next = undefined;
  }

  /** Queued messages of one partition (for `end`: is anything after the batch already here?). */
  queued(topic: string, partition: number): number {
    return this.queues.get(partitionKey(topic, partition))?.messages.length ?? 0;
  }

  /** Earliest time a partition now held back by a backoff becomes ready (undefined: none waiting). */
  nextReadyAt(): number | undefined {
    let at: number | undefined;
    for (const q of this.queues.values())
      if (!q.busy && q.messages.length > 0 && q.notBefore > 0) at = Math.min(at ?? Infinity, q.notBefore);
    return at;
  }
}
