export { KeyedProducer, type ProduceInput } from './producer';
export {
  HEADERS,
  derivedEventId,
  formatTraceparent,
  headersToStrings,
  newTraceId,
  parseTraceparent,
  recordSpanId,
} from './headers';
export type { Causation, ValueEncoder, WireRecord } from './types';
export { PRODUCER_DEFAULTS, type ProducerOptions } from './options';
