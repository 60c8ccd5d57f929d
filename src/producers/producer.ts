// The keyed producer: key = entity id, values validated and encoded through the registry, standard
// headers on every record, sends batched per flush. Idempotent (acks=all, sequence numbers), so a
// retried request never duplicates a record inside Kafka.
import { CompressionTypes, Partitioners, type Kafka, type Producer } from 'kafkajs';
import { KeyflowError } from '../errors';
import { derivedEventId, formatTraceparent, HEADERS, newTraceId } from './headers';
import { PRODUCER_DEFAULTS, type ProducerOptions } from './options';
import type { Causation, ValueEncoder, WireRecord } from './types';

export interface ProduceInput {
  topic: string;
  key: string;
  value: unknown | null;
  occurredAt?: number;
  /** Defaults to an id derived from the causation and `index`, or a random one for a fresh event. */
  eventId?: string;
  headers?: Record<string, string>;
}

export class KeyedProducer {
  private readonly producer: Producer;
  private readonly opts: ProducerOptions;
  private connected: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private queue: WireRecord[] = [];

  constructor(
    kafka: Kafka,
    private readonly encoder: ValueEncoder,
    opts: Partial<ProducerOptions> = {},
  ) {
    this.opts = { ...PRODUCER_DEFAULTS, ...opts };
    // kafkajs keeps order for its idempotent producer with one request in flight per broker, and
    // wants unlimited retries so a retried batch keeps its sequence numbers (no gap, no duplicate).
    // The cost: during a broker outage a send waits for the broker, as the stage does anyway.
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Murmur2 like the Java client, so a key lands where an upstream Java producer puts it.
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 5_000 },
    });
  }

  connect(): Promise<void> {
    this.connected ??= this.producer.connect();
    return this.connected;
  }

  /** Builds the wire record: validates and encodes the value, sets key and standard headers. */
  async prepare(input: ProduceInput, cause?: Causation, index = 0): Promise<WireRecord> {
    if (!input.key) {
      throw new KeyflowError('KEY_MISSING', `a record for ${input.topic} has no key; use the entity id`, {});
    }
    const eventId =
      input.eventId ??
      (cause ? derivedEventId(cause.eventId, cause.stage, index) : derivedEventId(newTraceId(), '', 0));
    const headers: Record<string, string> = {
      [HEADERS.EVENT_ID]: eventId,
      [HEADERS.TRACEPARENT]: formatTraceparent(cause?.traceId ?? newTraceId()),
      [HEADERS.ATTEMPT]: String(cause?.attempt ?? 1),
      ...(input.occurredAt !== undefined ? { [HEADERS.OCCURRED_AT]: String(input.occurredAt) } : {}),
      ...(cause ? { [HEADERS.CAUSATION_ID]: cause.eventId, [HEADERS.CAUSATION_STAGE]: cause.stage } : {}),
      ...(cause?.tenantId ? { [HEADERS.TENANT_ID]: cause.tenantId } : {}),
      ...input.headers,
    };
    const value = input.value === null ? null : await this.encoder.encode(input.topic, input.value);
    return { topic: input.topic, key: input.key, value, headers, eventId };
  }

  /** Queues records for the next flush; flushes by itself when the queue is full. */
  async enqueue(records: WireRecord[]): Promise<void> {
    this.queue.push(...records);
    if (this.queue.length >= this.opts.maxQueued) await this.flush();
  }

  /** Sends everything queued in one batched request per broker; resolves when all are acknowledged. */
  async flush(): Promise<void> {
    if (this.queue.length === 0) return;
    const records = this.queue;
    this.queue = [];
    await this.sendNow(records);
  }

  /** Sends records right away (bypassing the queue), grouped by topic, acks=all. */
  async sendNow(records: WireRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.connect();
    const byTopic = new Map<string, WireRecord[]>();
    for (const r of records) {
      let list = byTopic.get(r.topic);
      if (!list) byTopic.set(r.topic, (list = []));
      list.push(r);
    }
    try {
      await this.producer.sendBatch({
        acks: -1,
        timeout: this.opts.requestTimeoutMs,
        compression: CompressionTypes.None,
        topicMessages: [...byTopic].map(([topic, list]) => ({
          topic,
          messages: list.map((r) => ({
            key: r.key,
            value: r.value,
            headers: r.headers,
            ...(r.partition !== undefined ? { partition: r.partition } : {}),
          })),
        })),
      });
    } catch (err) {
      throw new KeyflowError(
        'PRODUCE_FAILED',
        `sending ${records.length} record(s) failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Produces one or more fresh events (no cause), e.g. from an HTTP request or a demo. */
  async publish(inputs: ProduceInput[]): Promise<WireRecord[]> {
    const records = await Promise.all(inputs.map((i) => this.prepare(i)));
    await this.sendNow(records);
    return records;
  }

  /** Flushes what is queued, then disconnects. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (this.connected) await this.flush();
      } finally {
        await this.producer.disconnect();
      }
    })();
    return this.closing;
  }
}
