// The one MongoDB connection a process shares, and `ensureIndexes` so that each collection declares its
// indexes next to the code that queries it (see provenance.ts, leases.ts) and start-up creates them all.
import { MongoClient, type Db, type IndexDescription } from 'mongodb';
import { redactUrl, type Config } from '../config';
import { classify, KeyflowError } from '../errors';
import type { Logger } from '../logger';

export interface Store {
  client: MongoClient;
  db: Db;
  /** Closes the client; safe to call more than once. */
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** How long to wait for the server to answer before failing with UNREACHABLE (default 5000). */
  timeoutMs?: number;
}

/**
 * Connects and pings once, so a wrong address fails at start with one line naming the (redacted)
 * address instead of surfacing later as a stage's write timing out.
 */
export async function connectStore(
  cfg: Pick<Config, 'mongoUrl' | 'mongoDb'>,
  log: Logger,
  opts: ConnectOptions = {},
): Promise<Store> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const address = redactUrl(cfg.mongoUrl);
  const client = new MongoClient(cfg.mongoUrl, {
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    appName: 'keyflow',
  });
  try {
    await client.connect();
    await client.db(cfg.mongoDb).command({ ping: 1 });
  } catch (err) {
    await client
      .close()
      .catch((closeErr: unknown) => log.debug({ err: closeErr }, 'closing a failed MongoDB client'));
    throw new KeyflowError(
      'UNREACHABLE',
      `MongoDB at ${address} did not answer within ${timeoutMs}ms: ${(err as Error).message}; is it running (\`keyflow services status\`) and is MONGO_URL right?`,
      { cause: err, details: { address } },
    );
  }
  log.info({ address, db: cfg.mongoDb }, 'connected to MongoDB');
  const db = client.db(cfg.mongoDb);
  let closing: Promise<void> | undefined;
  return {
    client,
    db,
    close() {
      closing ??= client.close().then(() => log.debug({ address }, 'MongoDB client closed'));
      return closing;
    },
  };
}

/** A collection and the indexes its queries need, declared in the module that owns the collection. */
export interface CollectionIndexes {
  collection: string;
  indexes: IndexDescription[];
}

/**
 * Creates every declared index (a no-op for ones that already exist with the same options). An index
 * that exists under the same name with other options fails with a message naming the collection.
 */
export async function ensureIndexes(db: Db, specs: CollectionIndexes[]): Promise<void> {
  for (const spec of specs) {
    if (spec.indexes.length === 0) continue;
    try {
      await db.collection(spec.collection).createIndexes(spec.indexes);
    } catch (err) {
      const e = classify(err);
      throw new KeyflowError(e.code, `creating indexes on ${spec.collection} failed: ${e.message}`, {
        retriable: e.retriable,
        cause: err,
        details: {
          collection: spec.collection,
          indexes: spec.indexes.map((i) => i.name ?? JSON.stringify(i.key)),
        },
      });
    }
  }
}
