// The @platformatic/kafka group member: the library's message stream (all assigned partitions in one
// flow) is split into per-partition queues, and up to `partitionsAtOnce` workers hand the engine one
// partition's queued messages at a time as a ClientBatch, in offset order. What the engine leaves
// uncommitted goes back to the front of its queue, unless the partition moved to another member.
// Before the member gives a partition up, its deliveries settle or yield (platformatic-consumer.ts).
import { FetchIsolationLevels, type Message, type MessagesStream } from '@platformatic/kafka';
import type { Logger } from '../logger';
import { filterAbortedTransactions } from './platformatic-aborted';
import { KeyflowConsumer } from './platformatic-consumer';
import { platformaticCall } from './platformatic-errors';
import { failureBackoff, platformaticBatch, redeliverAt, toQueued } from './platformatic-batch';
import { setGroupTimeouts } from './platformatic-group-config';
import type { PlatformaticBase } from './platformatic-options';
import { partitionKey, PartitionQueues, type QueuedMessage } from './platformatic-queues';
import { StableStarts } from './platformatic-stable-start';
import { MemberTransactions } from './platformatic-transactions';
import type { ClientBatch, GroupEvents, GroupMember, GroupOptions } from './types';

export type GroupProtocol = 'consumer' | 'classic';

export class PlatformaticGroupMember implements GroupMember {
  private consumer: KeyflowConsumer | undefined;
  private stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  private readonly queues = new PartitionQueues();
  /** A token per owned partition, new each time it is (re)assigned: a batch of an older one is stale. */
  private readonly owned = new Map<string, number>();
  private ownedSeq = 0;
  private readonly failures = new Map<string, number>();
  private running = 0;
  private suspended = false;
  private stopping = false;
  private pausedByUs = false;
  private pumpQueued = false;
  private idle: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped: Promise<void> | undefined;
  private onBatch: ((b: ClientBatch) => Promise<void>) | undefined;
  private readonly tx: MemberTransactions | undefined;
  private readonly starts: StableStarts | undefined;

  constructor(
    private readonly base: PlatformaticBase,
    private readonly opts: GroupOptions,
    private readonly events: GroupEvents = {},
    private readonly protocol: GroupProtocol = 'consumer',
    private readonly log?: Logger,
  ) {
    const t = opts.transactions;
    if (t)
      this.tx = new MemberTransactions(
        base,
        `${t.idPrefix}-${base.clientId}`,
        t.timeoutMs,
        () => this.consumer!,
        protocol === 'classic',
      );
    // Exactly-once: a partition's first delivery waits for a pending transactional commit (see the file).
    if (t && !opts.readOnly) this.starts = new StableStarts(base, opts.groupId);
  }

  private get bufferLimit(): number {
    return this.opts.fetchMaxBytes ?? 10 * 1024 * 1024;
  }

  async start(onBatch: (b: ClientBatch) => Promise<void>): Promise<void> {
    this.onBatch = onBatch;
    const { opts, base } = this;
    if (opts.transactions) filterAbortedTransactions();
    // A reader of its own group owns nothing another member waits for: its group needs no configs.
    if (this.protocol === 'consumer' && !opts.readOnly)
      await setGroupTimeouts(base, opts.groupId, opts, this.log);
    const consumer = new KeyflowConsumer(
      definedOnly({
        ...base,
        groupId: opts.groupId,
        ...(this.protocol === 'consumer'
          ? {
              groupProtocol: 'consumer',
              rebalanceTimeout: opts.rebalanceTimeoutMs,
              // The broker sets both for this protocol; the library checks them against the
              // rebalance timeout and watches for heartbeat stalls with the session timeout.
              sessionTimeout: opts.sessionTimeoutMs,
              heartbeatInterval: opts.heartbeatIntervalMs,
            }
          : {
              sessionTimeout: opts.sessionTimeoutMs,
              rebalanceTimeout: opts.rebalanceTimeoutMs,
              heartbeatInterval: opts.heartbeatIntervalMs,
            }),
        autocommit: false,
        maxWaitTime: opts.fetchWaitMs,
        maxBytes: opts.fetchMaxBytes,
        maxBytesPerPartition: opts.fetchMaxBytesPerPartition,
        isolationLevel: opts.transactions
          ? FetchIsolationLevels.READ_COMMITTED
          : FetchIsolationLevels.READ_UNCOMMITTED,
      }) as never,
      { suspend: () => this.suspend(), resume: () => this.resume() },
    );
    this.consumer = consumer;
    // Classic: a rejoin suspended the member; the join that follows applies the new assignment.
    consumer.on('consumer:group:join', () =>
      this.protocol === 'classic' ? this.resume() : this.assignmentChanged(),
    );
    consumer.on('consumer:heartbeat:end', () => this.assignmentChanged());
    // A fenced member's partitions are gone at once (the library empties its assignment): no batch of
    // them may transact while it rejoins.
    consumer.on('consumer:heartbeat:error', (e: { error?: unknown }) => {
      this.log?.info({ groupId: opts.groupId, err: e?.error }, 'group heartbeat failed');
      this.assignmentChanged();
    });
    await this.consume();
  }

  /**
   * Opens the library's message stream. A stream that fails (a fetch failed its retries: the broker
   * was gone for longer) is destroyed by the library and fetches nothing more, so a new one is opened
   * after a backoff; it starts from the committed offsets, and what the queues already hold is not
   * queued twice. Before, the member worked off what it had queued and then stalled for good
   * (broker-sigkill).
   */
  private async consume(): Promise<void> {
    const { opts } = this;
    const stream = await platformaticCall(() =>
      this.consumer!.consume({
        topics: opts.topics,
        mode: 'committed',
        fallbackMode: opts.startAt,
        autocommit: false,
      }),
    );
    if (this.stopping) {
      await stream.close().catch(() => undefined);
      return;
    }
    this.stream = stream;
    this.pausedByUs = false;
    stream.on('data', (m: Message<Buffer, Buffer, Buffer, Buffer>) => this.enqueue(m));
    stream.on('error', (err: Error) => {
      this.events.onCrash?.(err, true);
      if (this.stream === stream) this.reconsume(1);
    });
  }

  private reconsume(attempt: number): void {
    if (this.stopping) return;
    this.stream = undefined;
    setTimeout(() => {
      if (this.stopping) return;
      this.consume().catch((err: unknown) => {
        this.events.onCrash?.(err, true);
        this.reconsume(attempt + 1);
      });
    }, failureBackoff(attempt));
  }

  private assigned(topic: string, partition: number): boolean {
    return this.owned.has(partitionKey(topic, partition));
  }

  /** Compares the library's assignment with the last one seen: new partitions get a token, lost ones are dropped. */
  private assignmentChanged(): void {
    const now = new Set<string>();
    const list = this.consumer?.assignments ?? [];
    for (const a of list) for (const p of a.partitions) now.add(partitionKey(a.topic, p));
    const added: string[] = [];
    for (const key of now)
      if (!this.owned.has(key)) {
        this.owned.set(key, ++this.ownedSeq);
        added.push(key);
      }
    let changed = added.length > 0;
    for (const key of [...this.owned.keys()])
      if (!now.has(key)) {
        this.owned.delete(key);
        changed = true;
      }
    if (!changed) return;
    this.queues.retain((t, p) => this.assigned(t, p));
    const live = new Set(this.owned.values());
    this.starts?.retain((token) => live.has(token));
    for (const key of added) this.queues.reset(...splitKey(key));
    this.events.onJoin?.(list.map((a) => ({ topic: a.topic, partitions: [...a.partitions] })));
    this.pump();
  }

  private enqueue(m: Message<Buffer, Buffer, Buffer, Buffer>): void {
    if (!this.assigned(m.topic, m.partition)) this.assignmentChanged();
    if (!this.assigned(m.topic, m.partition)) return;
    this.queues.push(m.topic, m.partition, toQueued(m));
    if (this.queues.bytes > this.bufferLimit && !this.pausedByUs) {
      this.pausedByUs = true;
      this.stream?.pause();
    }
    // The stream pushes a whole fetch response synchronously: the workers start after it, so a
    // batch carries what one fetch brought of its partition.
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private suspend(): Promise<void> {
    this.suspended = true;
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private resume(): void {
    this.suspended = false;
    this.assignmentChanged();
    this.pump();
  }

  /** Starts workers while partitions are ready and slots are free. */
  private pump(): void {
    if (this.suspended || this.stopping || !this.onBatch) return;
    const slots = this.opts.partitionsAtOnce ?? 1;
    const maxBytes = this.opts.fetchMaxBytesPerPartition ?? 1024 * 1024;
    while (this.running < slots) {
      const taken = this.queues.take(maxBytes, Date.now(), (t, p) => this.assigned(t, p));
      if (!taken) break;
      this.running++;
      void this.deliver(taken.topic, taken.partition, taken.messages, taken.rest === 0);
    }
    if (this.pausedByUs && this.queues.bytes <= this.bufferLimit / 2) {
      this.pausedByUs = false;
      this.stream?.resume();
    }
    const at = this.queues.nextReadyAt();
    if (at !== undefined && !this.timer)
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.pump();
        },
        Math.max(0, at - Date.now()),
      );
  }

  private async deliver(
    topic: string,
    partition: number,
    messages: QueuedMessage[],
    drained: boolean,
  ): Promise<void> {
    const key = partitionKey(topic, partition);
    const token = this.owned.get(key);
    const owned = () => token !== undefined && this.owned.get(key) === token;
    // Everything fetched of this partition is here and delivered to this batch: the stream's next
    // fetch position is past any control records after the last message. Read now, as the batch was
    // taken: once anything is awaited the stream may have fetched (and queued) more, and a batch
    // ending there would commit past records it never held (processor-sigterm lost 53 that way).
    const fetchedTo =
      drained && this.stream?.readableLength === 0 ? this.stream.offsetsToFetch.get(key) : undefined;
    if (this.starts && token !== undefined) {
      let from: bigint;
      try {
        from = await this.starts.startOf(token, topic, partition, owned);
      } catch (err) {
        this.events.onCrash?.(err, true);
        return this.settle(topic, partition, owned() ? messages : [], true);
      }
      // Done and committed by whoever committed the stable offset.
      messages = messages.filter((m) => m.offset >= from);
      if (messages.length === 0) return this.settle(topic, partition, [], false);
    }
    let failed = false;
    const last = messages[messages.length - 1]!.offset;
    const { batch, committed } = platformaticBatch({
      topic,
      partition,
      messages,
      end: fetchedTo !== undefined && fetchedTo > last ? fetchedTo : last + 1n,
      consumer: this.consumer!,
      sessionTimeoutMs: this.opts.sessionTimeoutMs ?? 45_000,
      owned,
      working: () => !this.stopping && !this.suspended,
      tx: this.tx,
    });
    try {
      await this.onBatch!(batch);
    } catch (err) {
      failed = true;
      this.events.onCrash?.(err, true);
    } finally {
      const done = !owned() || (this.opts.readOnly === true && !failed);
      const upTo = committed();
      this.settle(
        topic,
        partition,
        done ? [] : messages.filter((m) => upTo === undefined || m.offset >= upTo),
        failed,
      );
    }
  }

  /** A delivery ended: `rest` goes back to its partition's queue (after a backoff when it failed). */
  private settle(topic: string, partition: number, rest: QueuedMessage[], failed: boolean): void {
    const key = partitionKey(topic, partition);
    const n = failed ? (this.failures.get(key) ?? 0) + 1 : 0;
    if (failed) this.failures.set(key, n);
    else this.failures.delete(key);
    const notBefore = redeliverAt(Date.now(), n, rest.length);
    this.queues.release(topic, partition, rest, notBefore);
    this.running--;
    if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
    this.pump();
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      if (this.timer) clearTimeout(this.timer);
      if (this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
      await this.stream?.close().catch(() => undefined);
      await this.consumer?.close().catch(() => undefined);
      await this.tx?.close();
      await this.starts?.close();
    })();
    return this.stopped;
  }
}

/** The options without their undefined entries, so the library's defaults apply to those. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function splitKey(key: string): [string, number] {
  const at = key.lastIndexOf(':');
  return [key.slice(0, at), Number(key.slice(at + 1))];
}
