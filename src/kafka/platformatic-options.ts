// The connection settings every @platformatic/kafka client of one Keyflow client shares: one place
// that knows the library's option names for brokers, timeouts and retries.
import { compatibilityPartitioner, ProduceAcks } from '@platformatic/kafka';
import type { Config } from '../config';

export interface PlatformaticBase {
  clientId: string;
  bootstrapBrokers: string[];
  /** Connect and request timeout of one call. */
  timeout: number;
  retries: number;
  retryDelay: number;
}

/** Keyflow's connection settings for the library, mirroring the kafkajs instance's retry budget. */
export function platformaticBase(config: Pick<Config, 'kafkaBrokers'>, clientId: string): PlatformaticBase {
  return { clientId, bootstrapBrokers: config.kafkaBrokers, timeout: 10_000, retries: 8, retryDelay: 250 };
}

/**
 * What every producer of the adapter sets, plain or transactional: idempotent, acks=all, no topic
 * created by a send, and keys hashed like the Java client (murmur2 masked positive), so a key lands on
 * the partition kafkajs and any Java producer pick. The library's default partitioner reads the hash
 * unsigned instead and puts about half the keys elsewhere on a 6-partition topic.
 */
export const PRODUCER_DEFAULTS = {
  idempotent: true,
  acks: ProduceAcks.ALL,
  autocreateTopics: false,
  partitioner: compatibilityPartitioner,
} as const;
