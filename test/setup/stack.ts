// Finds the real services the integration tests run against, in this order: connection variables
// already set → use them; a Docker engine reachable → testcontainers; otherwise → the local stack.
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { readPid, stackContext, up } from '../../src/services/stack';
import { startContainers } from './containers';

export const MARKER = path.resolve('.keyflow', 'test-stack.json');

export interface StackInfo {
  source: 'environment' | 'testcontainers' | 'local';
  env: Record<string, string>;
  /** The local stack was started by this test run and should be stopped after it. */
  startedLocal: boolean;
  /** The explain server (test/setup/explain.ts) was started by this test run. */
  startedExplain?: boolean;
}

async function dockerReachable(): Promise<boolean> {
  const sock = process.env.DOCKER_HOST?.replace(/^unix:\/\//, '') ?? '/var/run/docker.sock';
  if (!process.env.DOCKER_HOST && !fs.existsSync(sock)) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

export async function resolveStack(): Promise<StackInfo> {
  const { KAFKA_BROKERS, SCHEMA_REGISTRY_URL, MONGO_URL } = process.env;
  if (KAFKA_BROKERS && SCHEMA_REGISTRY_URL && MONGO_URL) {
    return {
      source: 'environment',
      env: { KAFKA_BROKERS, SCHEMA_REGISTRY_URL, MONGO_URL },
      startedLocal: false,
    };
  }
  if (await dockerReachable()) {
    return { source: 'testcontainers', env: await startContainers(), startedLocal: false };
  }
  const cfg = loadConfig(
    { ...process.env, KAFKA_BROKERS: '', SCHEMA_REGISTRY_URL: '', MONGO_URL: '' },
    { require: [] },
  );
  const ctx = stackContext(cfg, (line) => process.stderr.write(`[stack] ${line}\n`));
  const wasRunning = readPid(ctx, 'kafka') !== undefined;
  const env = await up(ctx);
  return { source: 'local', env, startedLocal: !wasRunning };
}
