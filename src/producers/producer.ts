// The keyed producer: key = entity id, values validated and encoded through the registry, standard
// headers on every record, sends batched per flush. Idempotent (acks=all, sequence numbers), so a
// retried request never duplicates a record inside Kafka.
import { CompressionTypes, Partitioners, type Kafka, type Producer } from 'kafkajs';
import { KeyflowError } from '../errors';
import { sendError } from './send-errors';
import { derivedEventId, formatTraceparent, HEADERS, newTraceId, recordSpanId } from './headers';
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
  private producer: Producer;
  private readonly opts: ProducerOptions;
  private connected: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private queue: WireRecord[] = [];
  /** Sends in flight per producer, so a retired one is disconnected only once they are done. */
  private readonly inFlight = new Map<Producer, number>();
  private readonly retired = new Set<Producer>();

  constructor(
    private readonly kafka: Kafka,
    private readonly encoder: ValueEncoder,
    opts: Partial<ProducerOptions> = {},
  ) {
    this.opts = { ...PRODUCER_DEFAULTS, ...opts };
    this.producer = this.create();
  }

  /**
   * Idempotent (acks=all, sequence numbers per producer id) with one request in flight, so kafkajs
   * keeps order. Its retries are finite, so a send always comes back with an answer; after a failed
   * send the producer is replaced (see sendNow).
   */
  private create(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Murmur2 like the Java client, so a key lands where an upstream Java producer puts it.
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: this.opts.sendRetries, initialRetryTime: 100, maxRetryTime: 5_000 },
    });
  }

  /**
   * kafkajs rolls an idempotent producer's sequence numbers back when a request times out (kafkajs
   * #1005), so the next batch on the same producer id may be refused or written twice. A producer
   * whose send failed is therefore never used again: the next send goes through a new one (new
   * producer id, fresh sequences). The retried records may then be written twice; every record
   * carries its deterministic event id, by which consumers drop the copy.
   */
  private replace(failed: Producer): void {
    if (failed !== this.producer || this.closing) return;
    this.retired.add(failed);
    this.producer = this.create();
    this.connected = undefined;
    this.disconnectIfIdle(failed);
  }

  private disconnectIfIdle(p: Producer): void {
    if (!this.retired.has(p) || (this.inFlight.get(p) ?? 0) > 0) return;
    this.retired.delete(p);
    void p.disconnect().catch(() => undefined);
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
      (cause
        ? derivedEventId(cause.eventId, cause.stage, index, cause.tenantId)
        : derivedEventId(newTraceId(), '', 0));
    const headers: Record<string, string> = {
      [HEADERS.EVENT_ID]: eventId,
      // The cause's trace goes on; the parent is this record's own send span (see recordSpanId).
      [HEADERS.TRACEPARENT]: formatTraceparent(cause?.traceId ?? newTraceId(), recordSpanId(eventId)),
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
    const producer = this.producer;
    this.inFlight.set(producer, (this.inFlight.get(producer) ?? 0) + 1);
    try {
      await producer.sendBatch({
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
      this.replace(producer);
      throw sendError(err, records.length);
    } finally {
      this.inFlight.set(producer, (this.inFlight.get(producer) ?? 1) - 1);
      this.disconnectIfIdle(producer);
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
        await Promise.all([this.producer, ...this.retired].map((p) => p.disconnect()));
      }
    })();
    return this.closing;
  }
}
