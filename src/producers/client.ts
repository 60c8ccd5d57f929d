// The Kafka client factory, beside the producer: one place that knows kafkajs's connection, retry and
// logging settings. Other rooms hold a KafkaClient and hand it to the producer, group or admin adapters.
import { Kafka, logLevel as kafkaLogLevel, type LogEntry } from 'kafkajs';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { isRetriedResponse } from './kafka-log';

export type KafkaClient = Kafka;

/** kafkajs logs through pino, at warn and above unless LOG_LEVEL asks for more; retried responses at debug. */
function kafkaLogger(log: Logger) {
  return () =>
    ({ level, log: entry }: LogEntry) => {
      const { message, ...rest } = entry;
      const fields = { ...rest, component: 'kafkajs' };
      if (isRetriedResponse(message, rest)) log.debug(fields, message);
      else if (level === kafkaLogLevel.ERROR) log.error(fields, message);
      else if (level === kafkaLogLevel.WARN) log.warn(fields, message);
      else log.debug(fields, message);
    };
}

export function kafkaClient(config: Config, log: Logger, clientId = config.kafkaClientId): KafkaClient {
  return new Kafka({
    clientId,
    brokers: config.kafkaBrokers,
    logLevel: kafkaLogLevel.WARN,
    logCreator: kafkaLogger(log),
    connectionTimeout: 5_000,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 10_000 },
  });
}
