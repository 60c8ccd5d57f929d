// The explain server (test/setup/explain.ts) from the shell, as .ci/run and a developer start it:
//
//   npx tsx test/setup/explain-server.ts up [port]   starts it (idempotent), prints EXPLAIN_MONGO_URL=...
//   npx tsx test/setup/explain-server.ts down        stops the one this folder started
// `npm test` starts one by itself when EXPLAIN_MONGO_URL is not set (test/setup/global-setup.ts).
import { DEFAULT_EXPLAIN_PORT, explainServerDown, explainServerUp } from './explain';

async function main(args: string[]): Promise<number> {
  const [action, portArg] = args;
  const port = portArg === undefined ? DEFAULT_EXPLAIN_PORT : Number(portArg);
  if ((action !== 'up' && action !== 'down') || !Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write('usage: explain-server.ts up [port] | down\n');
    return 2;
  }
  if (action === 'down') {
    const stopped = await explainServerDown(port);
    process.stderr.write(`[explain-mongo] ${stopped ? 'stopped' : 'nothing of ours was running'}\n`);
    return 0;
  }
  process.stdout.write(`EXPLAIN_MONGO_URL=${await explainServerUp(port)}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[explain-mongo] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
