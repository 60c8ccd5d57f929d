// kafkajs errors as Keyflow errors. A failed send: the innermost broker error names the cause and
// carries kafkajs's retriable flag. A record too large, a refused authorisation or a topic that does
// not exist will not heal by retrying; the stage's policy decides (dead letter) with a code that says
// which. Everything else (timeouts, lost connections, leader moves) is retried as infrastructure.
import { KeyflowError } from '../errors';
import { PRODUCER_FENCED_ANSWERS, refusedBy } from './broker-answers';

interface KafkaLikeError {
  name?: string;
  message?: string;
  type?: string;
  retriable?: boolean;
  originalError?: unknown;
  cause?: unknown;
}

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
  const refused = refusedBy(root?.type);
  if (refused) return new KeyflowError(refused, what, { cause: err, retriable: false });
  // kafkajs marks its own retriable errors; a wrapper saying "retries exceeded" is not a verdict on the
  // cause, so the root's flag decides, and anything unknown counts as a passing outage.
  return new KeyflowError('PRODUCE_FAILED', what, { cause: err, retriable: root?.retriable !== false });
}

/**
 * Broker answers that mean a newer producer holds the transactional id (or the broker expired ours):
 * the partition is someone else's now. PRODUCER_FENCED (90) is newer than kafkajs, which reports it as
 * an unknown code. A transactional id we may not use fences us for good: the partition stalls (lag and
 * alerts show it) rather than every event going to the dead letters.
 */
const FENCED = new Set([...PRODUCER_FENCED_ANSWERS, 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED']);

function isFenced(root: KafkaLikeError): boolean {
  return FENCED.has(root?.type ?? '') || /Unknown error code 90\b/.test(root?.message ?? '');
}

/** The Keyflow error for a failed transaction holding `count` records (it was aborted, or is fenced). */
export function transactionError(err: unknown, count: number): KeyflowError {
  if (err instanceof KeyflowError) return err;
  const root = rootCause(err);
  if (isFenced(root)) {
    const why =
      root.type === 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED'
        ? ' (grant the principal its transactional ids, or set KEYFLOW_DELIVERY_GUARANTEE=at-least-once)'
        : '';
    return new KeyflowError('PARTITION_FENCED', `transaction fenced: ${root.message ?? String(err)}${why}`, {
      cause: err,
      retriable: false,
    });
  }
  // A refused record is the event's (the window dead-letters it); anything else heals with a new
  // producer, which the next try opens.
  const e = sendError(err, count);
  if (e.code !== 'PRODUCE_FAILED') return e;
  return new KeyflowError('PRODUCE_FAILED', `transaction aborted: ${e.message}`, {
    cause: err,
    retriable: true,
  });
}

/** kafkajs errors that mean a broker is down or still starting: an outage, retried as such. */
const OUTAGE_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSMetadataNotLoaded',
]);

/**
 * Any error a kafkajs call threw, as a KeyflowError: an outage is UNREACHABLE, anything else keeps
 * kafkajs's own `retriable` flag. Every call of the kafkajs adapter passes its failures through this,
 * so no kafkajs error name reaches the rest of the engine.
 */
export function fromKafkajs(err: unknown): unknown {
  if (err instanceof KeyflowError) return err;
  const e = err as KafkaLikeError | null;
  const name = e?.name ?? '';
  if (!name.startsWith('KafkaJS')) return err;
  const message = e?.message ?? String(err);
  if (OUTAGE_NAMES.has(name)) return new KeyflowError('UNREACHABLE', message, { cause: err });
  return new KeyflowError('PRODUCE_FAILED', message, { retriable: e?.retriable === true, cause: err });
}

/** Runs a kafkajs call, its failure turned into a KeyflowError. */
export async function kafkajsCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw fromKafkajs(err);
  }
}
