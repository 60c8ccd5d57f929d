// One error root for the whole processor: every runtime failure carries a stable `code` and a
// `retriable` flag, and the stage runner routes on those two fields alone (retry vs dead letter).
// ERROR_CODES is the table the README documents; test/unit/errors.test.ts keeps the two in step.
import { MongoNetworkError, MongoServerSelectionError } from 'mongodb';

export const ERROR_CODES = {
  CONFIG_INVALID: { retriable: false, doc: 'A setting is missing or invalid; the message names it.' },
  USAGE: { retriable: false, doc: 'A command was called with wrong arguments.' },
  SERVICE_INSTALL_FAILED: { retriable: false, doc: 'A local-stack download or build step failed.' },
  SERVICE_NOT_INSTALLED: {
    retriable: false,
    doc: 'A local-stack service was started before its install step ran.',
  },
  SERVICE_START_FAILED: { retriable: false, doc: 'A local-stack service exited or did not answer in time.' },
  SERVICE_PORT_BUSY: {
    retriable: false,
    doc: 'A local-stack port is held by a process Keyflow did not start.',
  },
  FAULT_PROXY_FAILED: {
    retriable: false,
    doc: 'The fault suite’s Toxiproxy refused an API call (a proxy or toxic it was asked for).',
  },
  UNREACHABLE: { retriable: true, doc: 'Kafka, the registry or MongoDB did not answer.' },
  TOPOLOGY_INVALID: {
    retriable: false,
    doc: 'The declared topology is inconsistent (unknown topic, duplicate name).',
  },
  TOPIC_MISMATCH: {
    retriable: false,
    doc: 'An existing topic differs from its declaration (cleanup policy, partitions).',
  },
  SCHEMA_INCOMPATIBLE: {
    retriable: false,
    doc: 'The registry refused a schema as incompatible with the subject.',
  },
  DECODE_FAILED: {
    retriable: false,
    doc: 'Bytes are not in the Confluent wire format or not decodable with their schema.',
  },
  SCHEMA_UNKNOWN: { retriable: false, doc: 'A message names a schema id the registry does not know.' },
  VALIDATION_FAILED: { retriable: false, doc: 'A value does not satisfy its topic’s zod schema.' },
  EVENT_ID_REUSED: {
    retriable: false,
    doc: 'An event id of a tenant came again with other content; the message names the fields.',
  },
  KEY_MISSING: { retriable: false, doc: 'A message has no key; keyed topics need the entity id as key.' },
  KEY_MISMATCH: {
    retriable: false,
    doc: 'A message key is not the entity id its value names (the key contract); dead-lettered.',
  },
  STATE_UNREADABLE: {
    retriable: false,
    doc: 'A stored row cannot be read by this version; its key’s events are dead-lettered.',
  },
  VALUE_MISSING: {
    retriable: false,
    doc: 'A message has no value (a tombstone) on an input topic that is not compacted.',
  },
  KEY_PARKED: {
    retriable: false,
    doc: 'An earlier event of the same key is in the dead-letter topic; this one waits behind it.',
  },
  DEAD_LETTER_NOT_FOUND: {
    retriable: false,
    doc: '`dlq discard`: no unresolved dead letter matches the letter id or key given.',
  },
  HANDLER_FAILED: { retriable: false, doc: 'A stage handler threw an error without a Keyflow code.' },
  HANDLER_TRANSIENT: { retriable: true, doc: 'A stage handler reported a temporary failure; it is retried.' },
  STORE_TRANSIENT: {
    retriable: true,
    doc: 'MongoDB reported a temporary failure (network, election, write conflict).',
  },
  LEASE_BUSY: { retriable: true, doc: 'Another instance holds the entity lease; retried after backoff.' },
  RECORD_TOO_LARGE: {
    retriable: false,
    doc: 'A record to emit is over the topic’s max.message.bytes; its event is dead-lettered.',
  },
  PRODUCE_NOT_AUTHORIZED: {
    retriable: false,
    doc: 'The broker refused Keyflow write access to a topic; the event is dead-lettered.',
  },
  TOPIC_UNKNOWN: {
    retriable: false,
    doc: 'A record names a topic the broker does not have (topics are never auto-created).',
  },
  LEASE_LOST: {
    retriable: true,
    doc: 'A write under a lease met a newer holder’s write; refused, retried under a new lease.',
  },
  PRODUCE_FAILED: {
    retriable: true,
    doc: 'Emitting to a downstream topic failed; the batch is not committed.',
  },
  PARTITION_FENCED: {
    retriable: false,
    doc: 'Another member owns the partition now: this member’s transaction was fenced.',
  },
  NOT_FOUND: {
    retriable: false,
    doc: 'HTTP: the batch, image or named query does not exist for this customer (404).',
  },
  UNAUTHORIZED: { retriable: false, doc: 'HTTP: no API key, or an unknown one (401).' },
  FORBIDDEN: {
    retriable: false,
    doc: 'HTTP: the API key belongs to another customer (403); nothing is revealed.',
  },
  ADMIN_UNAUTHORIZED: {
    retriable: false,
    doc: 'HTTP admin: no admin token, a wrong one, or none configured on this instance (401).',
  },
  ADMIN_CROSS_SITE: {
    retriable: false,
    doc: 'HTTP admin: a state-changing request came from another site (403).',
  },
  ADMIN_JSON_REQUIRED: {
    retriable: false,
    doc: 'HTTP admin: a state-changing request without a JSON body (415); send `{}` at least.',
  },
  ADMIN_AUDIT_FAILED: {
    retriable: true,
    doc: 'HTTP admin: the audit record could not be written, so the action was not run (503).',
  },
  QUERY_TOO_BROAD: {
    retriable: false,
    doc: 'HTTP: a named query’s batches hold more assets than one call lists (400).',
  },
  NOTHING_TO_REINGEST: { retriable: false, doc: 'HTTP: reingest of a batch with no failed assets (409).' },
  ASSET_INVALID: {
    retriable: false,
    doc: 'An asset origin is missing, unreadable or not an image; recorded as the asset’s error.',
  },
  ASSET_REFUSED: {
    retriable: false,
    doc: 'An asset origin is refused by the asset policy (see README "Asset origins").',
  },
  ASSET_FETCH_FAILED: {
    retriable: true,
    doc: 'An http(s) origin answered with an error or broke off; retried, then recorded.',
  },
  SETTINGS_INVALID: {
    retriable: false,
    doc: 'A tenant-settings record failed validation; previous settings stay.',
  },
} as const satisfies Record<string, { retriable: boolean; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface KeyflowErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class KeyflowError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  readonly details: Record<string, unknown> | undefined;

  /** `retriable` defaults to the code's entry in ERROR_CODES; domain codes must state it. */
  constructor(code: ErrorCode | (string & {}), message: string, opts: KeyflowErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KeyflowError';
    this.code = code;
    const known = (ERROR_CODES as Record<string, { retriable: boolean }>)[code];
    this.retriable = opts.retriable ?? known?.retriable ?? false;
    this.details = opts.details;
  }
}

const TRANSIENT_MONGO_CODES = new Set([6, 7, 89, 91, 112, 189, 10107, 11600, 11602, 13435, 13436, 262]);

/**
 * A bulk write the driver could not carry out at all (the server unreachable mid-write): the driver
 * wraps its network error in a MongoBulkWriteError with no write errors, no write-concern error and no
 * server code. The fault suite's MongoDB kill found these dead-lettered as handler failures.
 */
function driverFailedBulk(err: unknown): boolean {
  const b = err as { name?: string; code?: unknown; writeErrors?: unknown; err?: unknown };
  return (
    b?.name === 'MongoBulkWriteError' &&
    typeof b.code !== 'number' &&
    b.err === undefined &&
    (!Array.isArray(b.writeErrors) || b.writeErrors.length === 0)
  );
}

/**
 * Reduces any thrown value to a KeyflowError: our own pass through; MongoDB network errors and transient server codes are retriable; anything else is a
 * handler bug and goes to the dead-letter topic rather than being retried forever.
 */
export function classify(err: unknown): KeyflowError {
  if (err instanceof KeyflowError) return err;
  const e = err as {
    name?: string;
    message?: string;
    code?: unknown;
    retriable?: unknown;
    errorLabels?: unknown;
  };
  const message = e?.message ?? String(err);
  const name = e?.name ?? '';
  // A Kafka client's own errors are mapped by its adapter (src/kafka/kafkajs-errors.ts), at its edge.
  // MongoNetworkError's subclasses include the pool-cleared errors, whose names do not all start with
  // "Mongo" (PoolClearedOnNetworkError): operations queued on a pool a failed monitor check cleared.
  if (err instanceof MongoNetworkError || err instanceof MongoServerSelectionError) {
    return new KeyflowError('STORE_TRANSIENT', message, { cause: err });
  }
  if (name.startsWith('Mongo')) {
    const labels = (Array.isArray(e.errorLabels) ? e.errorLabels : []) as string[];
    const transient =
      name === 'MongoNetworkError' ||
      name === 'MongoNetworkTimeoutError' ||
      name === 'MongoServerSelectionError' ||
      name === 'MongoWaitQueueTimeoutError' ||
      labels.includes('PoolRequestedRetry') ||
      labels.includes('TransientTransactionError') ||
      labels.includes('RetryableWriteError') ||
      (typeof e.code === 'number' && TRANSIENT_MONGO_CODES.has(e.code)) ||
      driverFailedBulk(err);
    if (transient) return new KeyflowError('STORE_TRANSIENT', message, { cause: err });
  }
  return new KeyflowError('HANDLER_FAILED', message, { cause: err });
}
