// Stops the local stack (and the explain server) only when this test run started it; what the developer
// started stays up.
import fs from 'node:fs';
import { loadConfig } from '../../src/config';
import { down, stackContext } from '../../src/services/stack';
import { explainServerDown } from './explain';
import { MARKER, type StackInfo } from './stack';

export default async function globalTeardown(): Promise<void> {
  if (!fs.existsSync(MARKER)) return;
  const info = JSON.parse(fs.readFileSync(MARKER, 'utf8')) as StackInfo;
  fs.rmSync(MARKER, { force: true });
  if (info.startedExplain && process.env.KEEP_STACK !== '1') await explainServerDown();
  if (info.source === 'local' && info.startedLocal && process.env.KEEP_STACK !== '1') {
    const cfg = loadConfig(
      { ...process.env, KAFKA_BROKERS: '', SCHEMA_REGISTRY_URL: '', MONGO_URL: '' },
      { require: [] },
    );
    await down(stackContext(cfg));
  }
}
