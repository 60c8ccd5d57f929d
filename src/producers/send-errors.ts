// What a failed send means, from kafkajs's own answer: the innermost broker error names the cause and
// carries kafkajs's retriable flag. A record too large, a refused authorisation or a topic that does
// not exist will not heal by retrying; the stage's policy decides (dead letter) with a code that says
// which. Everything else (timeouts, lost connections, leader moves) is retried as infrastructure.
import { KeyflowError } from '../errors';

interface KafkaLikeError {
  name?: string;
  message?: string;
  type?: string;
  retriable?: boolean;
  originalError?: unknown;
  cause?: unknown;
}

const REFUSED: Record<string, 'RECORD_TOO_LARGE' | 'PRODUCE_NOT_AUTHORIZED' | 'TOPIC_UNKNOWN'> = {
  MESSAGE_TOO_LARGE: 'RECORD_TOO_LARGE',
  RECORD_LIST_TOO_LARGE: 'RECORD_TOO_LARGE',
  INVALID_RECORD: 'RECORD_TOO_LARGE',
  TOPIC_AUTHORIZATION_FAILED: 'PRODUCE_NOT_AUTHORIZED',
  CLUSTER_AUTHORIZATION_FAILED: 'PRODUCE_NOT_AUTHORIZED',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'PRODUCE_NOT_AUTHORIZED',
  UNKNOWN_TOPIC_OR_PARTITION: 'TOPIC_UNKNOWN',
};

/** The innermost error kafkajs wrapped (retries exceeded, aggregated per-broker failures). */
export function rootCause(err: unknown): KafkaLikeError {
  let e = err as KafkaLikeError;
  for (let depth = 0; depth < 10; depth++) {
    const inner = (e?.originalError ?? (e?.name?.startsWith('KafkaJS') ? e?.cause : undefined)) as
      KafkaLikeError | undefined;
    if (!inner || typeof inner !== 'object') break;
    e = inner;
  }
  return e;
}

/** The Keyflow error for a failed send of `count` records. */
export function sendError(err: unknown, count: number): KeyflowError {
  const root = rootCause(err);
  const what = `sending ${count} record(s) failed: ${root?.message ?? String(err)}`;
  const refused = root?.type ? REFUSED[root.type] : undefined;
  if (refused) return new KeyflowError(refused, what, { cause: err, retriable: false });
  // kafkajs marks its own retriable errors; a wrapper saying "retries exceeded" is not a verdict on the
  // cause, so the root's flag decides, and anything unknown counts as a passing outage.
  return new KeyflowError('PRODUCE_FAILED', what, { cause: err, retriable: root?.retriable !== false });
}
