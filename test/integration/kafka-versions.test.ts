// Kafka 3.9 still runs when KEYFLOW_KAFKA_VERSION pins it (reload4j logging, static quorum), and a 4.x
// `services up` on the data it formatted is refused before anything starts, naming both ways out.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { DEFAULT_KAFKA_VERSION } from '../../src/config/schema';
import { kafka } from '../../src/services/kafka';
import { isAlive, logFile, tail } from '../../src/services/process';
import { stackContext } from '../../src/services/stack';
import { cleanupAll, freePort, onCleanup } from '../helpers';

afterAll(cleanupAll);

const BIN = path.join(__dirname, '..', '..', 'bin', 'keyflow.js');
const PINNED = '3.9.2';

async function stop(pid: number): Promise<void> {
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  while (isAlive(pid)) await new Promise((r) => setTimeout(r, 100));
}

test(`Kafka ${PINNED} starts when pinned, and 4.x refuses the data it formatted`, async () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-kafka39-'));
  onCleanup(async () => fs.rmSync(stateDir, { recursive: true, force: true }));
  const settings = {
    KEYFLOW_STATE_DIR: stateDir,
    KEYFLOW_KAFKA_PORT: String(await freePort()),
    KEYFLOW_KAFKA_CONTROLLER_PORT: String(await freePort()),
    KEYFLOW_REGISTRY_PORT: String(await freePort()),
    KEYFLOW_MONGO_PORT: String(await freePort()),
  };
  const ctx = stackContext(loadConfig({ ...settings, KEYFLOW_KAFKA_VERSION: PINNED }, { require: [] }));
  expect(ctx.kafkaVersion).toBe(PINNED);

  await kafka.preflight?.(ctx);
  await kafka.install(ctx);
  const pid = await kafka.start(ctx);
  onCleanup(() => stop(pid));
  // No deadline of our own: the broker answers or its process ends (jest's test timeout is the backstop).
  while (!(await kafka.ready(ctx))) {
    if (!isAlive(pid)) throw new Error(`Kafka ${PINNED} exited:\n${tail(logFile(ctx, 'kafka'))}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const props = fs.readFileSync(path.join(stateDir, 'kafka', 'server.properties'), 'utf8');
  expect(props).toContain(`controller.quorum.voters=1@127.0.0.1:${settings.KEYFLOW_KAFKA_CONTROLLER_PORT}`);
  // reload4j took our log4j.properties: its layout ends each line with the logger name.
  expect(fs.readFileSync(logFile(ctx, 'kafka'), 'utf8')).toMatch(
    /Kafka Server started \(kafka\.server\.KafkaRaftServer\)/,
  );
  await stop(pid);

  const res = spawnSync(process.execPath, [BIN, 'services', 'up'], {
    env: {
      ...process.env,
      ...settings,
      KEYFLOW_KAFKA_VERSION: '',
      KAFKA_BROKERS: '',
      SCHEMA_REGISTRY_URL: '',
      MONGO_URL: '',
    },
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect(res.status).toBe(1);
  expect(res.stderr).toContain(
    `formatted by Kafka ${PINNED} and cannot be run as ${DEFAULT_KAFKA_VERSION}; set KEYFLOW_KAFKA_VERSION=${PINNED} to keep it, or run \`keyflow services reset\``,
  );
  // Refused before anything started: no service of the stack left a pid behind.
  expect(fs.existsSync(path.join(stateDir, 'pids', 'mongo.pid'))).toBe(false);
  expect(fs.existsSync(path.join(stateDir, 'pids', 'registry.pid'))).toBe(false);
});
