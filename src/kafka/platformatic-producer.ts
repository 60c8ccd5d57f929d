// The @platformatic/kafka record sender: idempotent, acks=all, keys hashed like the Java client so a
// key lands on the partition kafkajs (and any Java producer) would pick. The library keeps one
// request in flight per partition with sequence numbers, so order holds across its own retries; a
// failed send is mapped to a KeyflowError that says whether it heals by retrying.
import { Producer, type MessageToProduce } from '@platformatic/kafka';
import type { WireRecord } from '../producers/types';
import { sendError } from './platformatic-errors';
import { PRODUCER_DEFAULTS, type PlatformaticBase } from './platformatic-options';
import type { RecordSender, SenderOptions } from './types';

/** A Keyflow record as the library's message; a null value is a tombstone (no value). */
export function toMessage(r: WireRecord): MessageToProduce<Buffer, Buffer, Buffer, Buffer> {
  const headers = new Map<Buffer, Buffer>();
  for (const [k, v] of Object.entries(r.headers)) headers.set(Buffer.from(k), Buffer.from(v));
  return {
    topic: r.topic,
    key: Buffer.from(r.key),
    ...(r.value !== null ? { value: r.value } : {}),
    headers,
    ...(r.partition !== undefined ? { partition: r.partition } : {}),
  };
}

export class PlatformaticSender implements RecordSender {
  private readonly producer: Producer<Buffer, Buffer, Buffer, Buffer>;
  private closed: Promise<void> | undefined;

  constructor(base: PlatformaticBase, opts: SenderOptions) {
    this.producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
      ...base,
      retries: opts.sendRetries,
      timeout: opts.requestTimeoutMs,
      ...PRODUCER_DEFAULTS,
    });
  }

  /** The library connects on first use; this checks that a broker answers. */
  async connect(): Promise<void> {
    try {
      await this.producer.metadata({ topics: [] });
    } catch (err) {
      throw sendError(err, 0);
    }
  }

  async send(records: WireRecord[]): Promise<void> {
    if (records.length === 0) return;
    try {
      await this.producer.send({ messages: records.map(toMessage) });
    } catch (err) {
      throw sendError(err, records.length);
    }
  }

  disconnect(): Promise<void> {
    this.closed ??= this.producer.close();
    return this.closed;
  }
}
