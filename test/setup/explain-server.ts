// The SecantusDB that the explain half of test/integration/indexes.test.ts runs against: one Mongo-protocol
// server on its own port and state folder (<KEYFLOW_STATE_DIR>/explain-mongo), beside whatever stack the
// other tests use. Its planner answers explain with IXSCAN/COLLSCAN, which neither default server does.
//
//   npx tsx test/setup/explain-server.ts up [port]   starts it (idempotent), prints EXPLAIN_MONGO_URL=...
//   npx tsx test/setup/explain-server.ts down        stops the one this folder started
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { mongo } from '../../src/services/mongo';
import { down, ensure, stackContext } from '../../src/services/stack';

export const DEFAULT_EXPLAIN_PORT = 27037;

async function main(args: string[]): Promise<number> {
  const [action, portArg] = args;
  const port = portArg === undefined ? DEFAULT_EXPLAIN_PORT : Number(portArg);
  if ((action !== 'up' && action !== 'down') || !Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write('usage: explain-server.ts up [port] | down\n');
    return 2;
  }
  const cfg = loadConfig(process.env, { require: [] });
  const ctx = {
    ...stackContext(cfg, (line) => process.stderr.write(`[explain-mongo] ${line}\n`)),
    stateDir: path.resolve(cfg.stateDir, 'explain-mongo'),
    mongoServer: 'secantusdb' as const,
  };
  ctx.ports = { ...ctx.ports, mongo: port };
  if (action === 'down') {
    const stopped = await down(ctx);
    process.stderr.write(`[explain-mongo] ${stopped.length ? 'stopped' : 'nothing of ours was running'}\n`);
    return 0;
  }
  await ensure(ctx, mongo);
  process.stdout.write(`EXPLAIN_MONGO_URL=${mongo.endpoint(ctx).env.MONGO_URL}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[explain-mongo] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
