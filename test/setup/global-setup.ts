// Jest global setup for integration tests: find or start the real stack, export its settings to the
// test workers, and say plainly which services the run is using.
import fs from 'node:fs';
import path from 'node:path';
import { explainServerUp } from './explain';
import { MARKER, resolveStack } from './stack';

export default async function globalSetup(): Promise<void> {
  const info = await resolveStack();
  Object.assign(process.env, info.env);
  // The index test's explain half needs a server that explains (SecantusDB, or a MongoDB you name).
  if (!process.env.EXPLAIN_MONGO_URL) {
    process.env.EXPLAIN_MONGO_URL = await explainServerUp();
    info.env.EXPLAIN_MONGO_URL = process.env.EXPLAIN_MONGO_URL;
    info.startedExplain = true;
  }
  fs.mkdirSync(path.dirname(MARKER), { recursive: true });
  fs.writeFileSync(MARKER, JSON.stringify(info));
  process.stderr.write(
    `\n[stack] integration tests use ${info.source} services: ${Object.entries(info.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}\n`,
  );
}
