// The kafkajs record sender: idempotent (acks=all, sequence numbers per producer id) with one request
// in flight, so kafkajs keeps order. Its retries are finite, so a send always comes back with an
// answer; a failed send's error is mapped to a KeyflowError that says whether it heals by retrying.
import { CompressionTypes, Partitioners, type Kafka, type Producer, type ProducerConfig } from 'kafkajs';
import type { WireRecord } from '../producers/types';
import { sendError } from './kafkajs-errors';
import type { RecordSender, SenderOptions } from './types';

/**
 * What every producer of the adapter sets, plain or transactional: idempotent with one request in
 * flight (kafkajs keeps order across its retries only so), no topic created by a send, and keys hashed
 * with murmur2 like the Java client, so a key lands where an upstream Java producer puts it.
 */
export function producerConfig(retries: number): ProducerConfig {
  return {
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries, initialRetryTime: 100, maxRetryTime: 5_000 },
  };
}

export class KafkajsSender implements RecordSender {
  private producer: Producer;
  private connected: Promise<void> | undefined;
  private closing = false;
  /** Sends in flight per producer, so a retired one is disconnected only once they are done. */
  private readonly inFlight = new Map<Producer, number>();
  private readonly retired = new Set<Producer>();

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: SenderOptions,
  ) {
    this.producer = this.create();
  }

  private create(): Producer {
    return this.kafka.producer(producerConfig(this.opts.sendRetries));
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

  /** Sends the records grouped by topic in one request per broker, acks=all. */
  async send(records: WireRecord[]): Promise<void> {
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

  async disconnect(): Promise<void> {
    this.closing = true;
    await Promise.all([this.producer, ...this.retired].map((p) => p.disconnect()));
  }
}
