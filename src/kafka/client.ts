// The one place that picks the Kafka client library (KEYFLOW_KAFKA_CLIENT): everything else opens
// Kafka through the KafkaClient this returns.
import type { Config } from '../config';
import type { Logger } from '../logger';
import { kafkajsClient, kafkajsInstance } from './kafkajs-client';
import type { KafkaClient } from './types';

type PlatformaticAdapter = typeof import('./platformatic-client') & typeof import('./platformatic-options');

/**
 * @platformatic/kafka is an ES module: Node 24 requires it natively, but jest's module loader only
 * with --experimental-vm-modules. It is loaded when chosen, so the kafkajs path never needs that.
 */
function platformatic(): PlatformaticAdapter {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return {
    ...(require('./platformatic-client') as typeof import('./platformatic-client')),
    ...(require('./platformatic-options') as typeof import('./platformatic-options')),
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

export function kafkaClient(config: Config, log: Logger, clientId = config.kafkaClientId): KafkaClient {
  if (config.kafkaAdapter === 'platformatic') {
    const p = platformatic();
    return p.platformaticClient(p.platformaticBase(config, clientId), config.kafkaGroupProtocol, log);
  }
  return kafkajsClient(kafkajsInstance(config, log, clientId));
}
