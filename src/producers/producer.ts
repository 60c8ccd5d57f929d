// The keyed producer: key = entity id, values validated and encoded through the registry, standard
// headers on every record, sends batched per flush through the client's record sender (idempotent,
// acks=all, so a retried request never duplicates a record inside Kafka).
import { KeyflowError } from '../errors';
import type { KafkaClient, RecordSender } from '../kafka/types';
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
  private readonly sender: RecordSender;
  private readonly opts: ProducerOptions;
  private closing: Promise<void> | undefined;
  private connected = false;
  private queue: WireRecord[] = [];

  constructor(
    client: Pick<KafkaClient, 'sender'>,
    private readonly encoder: ValueEncoder,
    opts: Partial<ProducerOptions> = {},
  ) {
    this.opts = { ...PRODUCER_DEFAULTS, ...opts };
    this.sender = client.sender(this.opts);
  }

  connect(): Promise<void> {
    this.connected = true;
    return this.sender.connect();
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

  /** Sends records right away (bypassing the queue), acks=all. */
  async sendNow(records: WireRecord[]): Promise<void> {
    if (records.length === 0) return;
    this.connected = true;
    await this.sender.send(records);
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
        await this.sender.disconnect();
      }
    })();
    return this.closing;
  }
}
