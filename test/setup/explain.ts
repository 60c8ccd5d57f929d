// The SecantusDB that the explain half of test/integration/indexes.test.ts runs against: one Mongo-protocol
// server on its own port and state folder (<KEYFLOW_STATE_DIR>/explain-mongo), beside whatever stack the
// other tests use. Its planner answers explain with IXSCAN/COLLSCAN, which neither default server does.
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { mongo } from '../../src/services/mongo';
import { down, ensure, stackContext } from '../../src/services/stack';

export const DEFAULT_EXPLAIN_PORT = 27037;

function explainContext(port: number) {
  const cfg = loadConfig(
    { ...process.env, KAFKA_BROKERS: '', SCHEMA_REGISTRY_URL: '', MONGO_URL: '' },
    { require: [] },
  );
  const ctx = {
    ...stackContext(cfg, (line) => process.stderr.write(`[explain-mongo] ${line}\n`)),
    stateDir: path.resolve(cfg.stateDir, 'explain-mongo'),
    mongoServer: 'secantusdb' as const,
  };
  ctx.ports = { ...ctx.ports, mongo: port };
  return ctx;
}

/** Starts it (installing it first if need be; a no-op when it already answers) and returns its URL. */
export async function explainServerUp(port = DEFAULT_EXPLAIN_PORT): Promise<string> {
  const ctx = explainContext(port);
  await ensure(ctx, mongo);
  return mongo.endpoint(ctx).env.MONGO_URL!;
}

/** Stops the one this folder started; says whether there was one. */
export async function explainServerDown(port = DEFAULT_EXPLAIN_PORT): Promise<boolean> {
  return (await down(explainContext(port))).length > 0;
}
