// Every setting Keyflow reads, as one zod schema: names, defaults and rules live here as data, and
// the README's settings table is checked against this list (test/unit/config.test.ts).
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { isIP } from 'node:net';
import { APPLICATION_ID_PATTERN } from '../topology/names';

/** Newest Kafka that resolves from Maven Central and runs on the local stack (checked with mvn, Java 17). */
export const DEFAULT_KAFKA_VERSION = '4.4.0';

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const ms = z.coerce.number().int().min(0);

/** A setting: its environment variable, its schema (with default when optional) and one line for the docs. */
export interface SettingSpec<S extends z.ZodType = z.ZodType> {
  env: string;
  schema: S;
  doc: string;
  secret?: boolean;
}

function setting<S extends z.ZodType>(env: string, schema: S, doc: string, secret = false): SettingSpec<S> {
  return { env, schema, doc, secret };
}

/** A comma-separated list; empty entries are dropped, the empty list is the default. */
function commaList(item: z.ZodType<string, string>) {
  return z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item))
    .default([]);
}

function isCidr(text: string): boolean {
  const [ip = '', prefix, extra] = text.split('/');
  const family = isIP(ip);
  if (family === 0 || extra !== undefined) return false;
  return prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

const brokerList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each broker must be host:port'))
      .min(1, 'give at least one host:port'),
  );

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must start with http:// or https://');
const mongoUrl = z.string().regex(/^mongodb(\+srv)?:\/\/.+/, 'must start with mongodb:// or mongodb+srv://');

export const settings = {
  kafkaBrokers: setting('KAFKA_BROKERS', brokerList, 'Comma-separated Kafka bootstrap servers (host:port).'),
  kafkaClientId: setting('KAFKA_CLIENT_ID', z.string().min(1).default('keyflow'), 'Kafka client id prefix.'),
  kafkaAdapter: setting(
    'KEYFLOW_KAFKA_CLIENT',
    z.enum(['kafkajs', 'platformatic']).default('kafkajs'),
    'Which Kafka client library carries every connection: `kafkajs` or `platformatic` (@platformatic/kafka).',
  ),
  kafkaGroupProtocol: setting(
    'KEYFLOW_KAFKA_GROUP_PROTOCOL',
    z.enum(['consumer', 'classic']).default('consumer'),
    'Consumer group protocol of the `platformatic` client: `consumer` (KIP-848, incremental) or `classic`; kafkajs always speaks classic.',
  ),
  applicationId: setting(
    'KEYFLOW_APPLICATION_ID',
    z
      .string()
      .regex(
        APPLICATION_ID_PATTERN,
        'must be at most 64 letters, digits, - or _ (no dot), e.g. `prod` or `orders-staging`',
      )
      .default(''),
    'Prefixes every consumer group id as `<id>.<stage>`, so deployments sharing a Kafka cluster stay apart; empty (the default) keeps the bare stage names.',
  ),
  schemaRegistryUrl: setting('SCHEMA_REGISTRY_URL', httpUrl, 'Confluent-compatible schema registry URL.'),
  schemaRegistryAuth: setting(
    'SCHEMA_REGISTRY_AUTH',
    z
      .string()
      .regex(/^[^:]+:.+$/, 'must be user:password')
      .optional(),
    'Basic auth for the registry as user:password (never logged).',
    true,
  ),
  mongoUrl: setting('MONGO_URL', mongoUrl, 'MongoDB connection string (never logged in full).', true),
  mongoDb: setting(
    'MONGO_DB',
    z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,63}$/)
      .default('keyflow'),
    'Database name.',
  ),
  port: setting(
    'PORT',
    z.coerce.number().int().min(0).max(65535).default(8080),
    'HTTP port of the API, /metrics, /healthz and /readyz; 0 picks a free one (logged).',
  ),
  adminPort: setting(
    'ADMIN_PORT',
    z.coerce.number().int().min(0).max(65535).default(8081),
    'HTTP port of the admin surface (/ops, /replay, /provenance, /tenants); 0 picks a free one (logged).',
  ),
  adminHost: setting(
    'ADMIN_HOST',
    z.string().min(1).default('127.0.0.1'),
    'Address the admin listener binds; keep it on loopback unless a proxy in front authenticates too.',
  ),
  adminToken: setting(
    'KEYFLOW_ADMIN_TOKEN',
    z
      .string()
      .min(32, 'must be at least 32 characters (e.g. `openssl rand -base64 32`)')
      .transform((t) => createHash('sha256').update(t, 'utf8').digest('hex'))
      .optional(),
    'Admin token; only its SHA-256 is kept (the variable is removed from the environment at start). Never logged.',
    true,
  ),
  adminTokenHash: setting(
    'KEYFLOW_ADMIN_TOKEN_HASH',
    z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be the SHA-256 of the token as 64 hex digits')
      .transform((h) => h.toLowerCase())
      .optional(),
    'SHA-256 (hex) of the admin token, so the token itself need not be in the environment; instead of KEYFLOW_ADMIN_TOKEN.',
    true,
  ),
  provenanceRetentionDays: setting(
    'KEYFLOW_PROVENANCE_RETENTION_DAYS',
    z.coerce.number().int().min(0).max(36500).default(30),
    'Provenance records older than this are removed (TTL index, plus a sweep for servers that ignore TTL); 0 keeps them forever.',
  ),
  provenanceSweepIntervalMs: setting(
    'KEYFLOW_PROVENANCE_SWEEP_INTERVAL_MS',
    z.coerce.number().int().min(1000).default(3600000),
    'How often expired provenance records are swept (for Mongo-protocol servers without a TTL monitor).',
  ),
  logLevel: setting(
    'LOG_LEVEL',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    'pino log level.',
  ),
  logFile: setting(
    'KEYFLOW_LOG_FILE',
    z.string().min(1).optional(),
    'Append log lines to this file instead of standard output (the demo: .keyflow/logs/demo.log unless LOG_LEVEL is set).',
  ),
  stateDir: setting(
    'KEYFLOW_STATE_DIR',
    z.string().min(1).default('.keyflow'),
    'Local stack state: data, logs, pids, services.env (relative to the working directory).',
  ),
  cacheDir: setting(
    'KEYFLOW_CACHE_DIR',
    z
      .string()
      .min(1)
      .default(path.join(os.homedir(), '.cache', 'keyflow')),
    'Download and build cache of the local stack (jars, FerretDB binary); survives fresh clones.',
  ),
  kafkaPort: setting('KEYFLOW_KAFKA_PORT', port.default(29092), 'Local stack: Kafka broker port.'),
  kafkaControllerPort: setting(
    'KEYFLOW_KAFKA_CONTROLLER_PORT',
    port.default(29093),
    'Local stack: KRaft controller port.',
  ),
  kafkaVersion: setting(
    'KEYFLOW_KAFKA_VERSION',
    z
      .string()
      .regex(
        /^(?:4\.\d+|3\.9)\.\d+$/,
        'must be a Kafka 4.x release such as 4.4.0, or a 3.9.x one such as 3.9.2',
      )
      .default(DEFAULT_KAFKA_VERSION),
    'Local stack: the Kafka release to run, 4.x or 3.9.x (jars from Maven Central).',
  ),
  registryPort: setting('KEYFLOW_REGISTRY_PORT', port.default(28081), 'Local stack: schema registry port.'),
  mongoPort: setting('KEYFLOW_MONGO_PORT', port.default(27027), 'Local stack: Mongo-protocol server port.'),
  prometheusPort: setting(
    'KEYFLOW_PROMETHEUS_PORT',
    port.default(29094),
    'Fault suite: port of the Prometheus server `keyflow faults` runs beside the scenarios.',
  ),
  faultProxyPort: setting(
    'KEYFLOW_FAULT_PROXY_PORT',
    port.max(65532).default(28474),
    "Fault suite only: Toxiproxy's API port; the next three: its Kafka proxy, the broker listener behind it, its Mongo proxy.",
  ),
  mongoServer: setting(
    'KEYFLOW_MONGO_SERVER',
    z.enum(['ferretdb', 'mongo-java-server', 'secantusdb']).default('mongo-java-server'),
    'Local stack: which Mongo-protocol server to start (see README, "Mongo-protocol servers").',
  ),
  deliveryGuarantee: setting(
    'KEYFLOW_DELIVERY_GUARANTEE',
    z
      .enum(['exactly-once', 'at-least-once'], {
        message: 'must be exactly-once or at-least-once (at-least-once for a cluster without transactions)',
      })
      .default('exactly-once'),
    'exactly-once: what a stage emits, its dead letters and its offsets commit in one Kafka transaction per flush; at-least-once: records are sent, then offsets committed (for clusters without transactions).',
  ),
  keyLanes: setting(
    'KEYFLOW_KEY_LANES',
    positiveInt.max(1024).default(16),
    'Per partition, how many distinct keys run concurrently (one key is always sequential).',
  ),
  maxAttempts: setting(
    'KEYFLOW_MAX_ATTEMPTS',
    positiveInt.max(100).default(5),
    'Attempts of a retriable failure before the event goes to the dead-letter topic.',
  ),
  redriveStaleMs: setting(
    'KEYFLOW_REDRIVE_STALE_MS',
    z.coerce.number().int().min(1000).default(600000),
    '`dlq replay` sends again a letter left `redriven` (sent, not yet applied) for longer than this.',
  ),
  deadLetterRetentionDays: setting(
    'KEYFLOW_DEAD_LETTER_RETENTION_DAYS',
    positiveInt.max(3650).default(30),
    'Days a resolved dead letter stays in MongoDB (TTL index, plus an hourly sweep).',
  ),
  dlqMaxMessageBytes: setting(
    'KEYFLOW_DLQ_MAX_MESSAGE_BYTES',
    z.coerce.number().int().min(1024).default(1048576),
    'The dead-letter topics’ max.message.bytes; a larger dead letter is sent header-only.',
  ),
  retryBaseMs: setting('KEYFLOW_RETRY_BASE_MS', ms.default(200), 'First retry delay; doubles per attempt.'),
  retryMaxMs: setting('KEYFLOW_RETRY_MAX_MS', ms.default(30000), 'Upper bound of one retry delay.'),
  sessionTimeoutMs: setting(
    'KEYFLOW_SESSION_TIMEOUT_MS',
    z.coerce.number().int().min(6000).default(30000),
    'Consumer group session timeout.',
  ),
  heartbeatIntervalMs: setting(
    'KEYFLOW_HEARTBEAT_INTERVAL_MS',
    z.coerce.number().int().min(100).default(3000),
    'Consumer heartbeat interval; must be below a third of the session timeout.',
  ),
  ingestMaxBytes: setting(
    'KEYFLOW_INGEST_MAX_BYTES',
    z.coerce.number().int().min(1048576).default(67108864),
    'Fetched record bytes the process holds at once across all stages and lanes; a delivery waits for room.',
  ),
  rebalanceTimeoutMs: setting(
    'KEYFLOW_REBALANCE_TIMEOUT_MS',
    z.coerce.number().int().min(6000).default(60000),
    'How long the group waits for every member to rejoin a rebalance; a member that is later is dropped.',
  ),
  infraRetryBudgetMs: setting(
    'KEYFLOW_INFRA_RETRY_BUDGET_MS',
    z.coerce.number().int().min(1000).default(20000),
    'Inside one fetched batch, how long a call to MongoDB, Kafka or the registry is retried before the batch gives up (its uncommitted rest is fetched again); at most half the rebalance timeout.',
  ),
  startupWaitMs: setting(
    'KEYFLOW_STARTUP_WAIT_MS',
    z.coerce.number().int().min(0).default(120000),
    'At start-up, how long an unreachable Kafka, registry or MongoDB is waited for (retried with backoff) before start fails; 0 fails at once.',
  ),
  lagIntervalMs: setting(
    'KEYFLOW_LAG_INTERVAL_MS',
    z.coerce.number().int().min(100).default(5000),
    'How often consumer lag is polled from Kafka (committed against end offsets).',
  ),
  stallAfterMs: setting(
    'KEYFLOW_STALL_AFTER_MS',
    z.coerce.number().int().min(1000).default(60000),
    'A partition with lag and no committed progress for this long is reported stalled.',
  ),
  batchCleanupStrategy: setting(
    'KEYFLOW_BATCH_CLEANUP_STRATEGY',
    z.enum(['off', 'completed', 'older-than', 'superseded']).default('off'),
    'Scheduled BatchAssets cleanup of finished batches: off, completed, older-than or superseded.',
  ),
  batchCleanupDays: setting(
    'KEYFLOW_BATCH_CLEANUP_DAYS',
    z.coerce.number().int().min(0).max(36500).default(90),
    'With strategy older-than: remove rows that finished more than this many days ago.',
  ),
  batchCleanupIntervalMs: setting(
    'KEYFLOW_BATCH_CLEANUP_INTERVAL_MS',
    z.coerce.number().int().min(60000).default(86400000),
    'How often the scheduled BatchAssets cleanup runs.',
  ),
  assetFileRoot: setting(
    'KEYFLOW_ASSET_FILE_ROOT',
    z.string().min(1).optional(),
    'file:// asset origins are refused unless set; then only files under this directory, after resolving links.',
  ),
  assetAllowHosts: setting(
    'KEYFLOW_ASSET_ALLOW_HOSTS',
    commaList(
      z
        .string()
        .regex(
          /^(\*\.)?[a-z0-9.-]+$|^\[?[0-9a-f:.]+\]?$/i,
          'each entry must be a host name, *.domain or an IP',
        ),
    ),
    'When set (comma-separated), http(s) asset origins must name one of these hosts; *.example.com allows subdomains.',
  ),
  assetAllowAddresses: setting(
    'KEYFLOW_ASSET_ALLOW_ADDRESSES',
    commaList(z.string().refine(isCidr, 'each entry must be an IP address or CIDR such as 10.1.0.0/16')),
    'Address ranges (CIDR, comma-separated) asset fetches may reach although loopback, private or link-local.',
  ),
  assetFetchTimeoutMs: setting(
    'KEYFLOW_ASSET_FETCH_TIMEOUT_MS',
    z.coerce.number().int().min(100).max(600000).default(10000),
    'Time limit for one http(s) asset fetch, from connect to last byte; then it is retried, then recorded.',
  ),
  assetMaxBytes: setting(
    'KEYFLOW_ASSET_MAX_BYTES',
    z.coerce.number().int().min(1024).default(33554432),
    'Asset origins larger than this are recorded as errors; the fetch stops reading at the cap.',
  ),
  entityLocking: setting(
    'KEYFLOW_ENTITY_LOCKING',
    z.enum(['off', 'lease']).default('off'),
    'Per-entity lease for handlers that touch one entity from several topics; switchable at runtime.',
  ),
} satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof settings;
