// The connection settings every @platformatic/kafka client of one Keyflow client shares: one place
// that knows the library's option names for brokers, timeouts and retries.
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
