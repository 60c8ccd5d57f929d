// `keyflow services up`, `down` and `reset` on a stack of their own (own state dir and ports): every
// service answers after up and status names what runs, up again is a no-op, after down no process of
// ours runs and no port is bound, and reset refuses without a yes, then stops the stack and wipes its data.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isAlive, portOpen } from '../../src/services/process';
import { cleanupAll, onCleanup, freePort } from '../helpers';

afterAll(cleanupAll);

const BIN = path.join(__dirname, '..', '..', 'bin', 'keyflow.js');

test('services up answers, is idempotent, and down leaves no process or port behind', async () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-services-'));
  const ports = {
    kafka: await freePort(),
    controller: await freePort(),
    registry: await freePort(),
    mongo: await freePort(),
  };
  const env = {
    ...process.env,
    KAFKA_BROKERS: '',
    SCHEMA_REGISTRY_URL: '',
    MONGO_URL: '',
    KEYFLOW_STATE_DIR: stateDir,
    KEYFLOW_KAFKA_VERSION: '', // the default, whatever the caller's shell pins
    KEYFLOW_KAFKA_PORT: String(ports.kafka),
    KEYFLOW_KAFKA_CONTROLLER_PORT: String(ports.controller),
    KEYFLOW_REGISTRY_PORT: String(ports.registry),
    KEYFLOW_MONGO_PORT: String(ports.mongo),
  };
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, 'services', ...args], { env, encoding: 'utf8', timeout: 240_000 });
  onCleanup(async () => {
    run('down');
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  const up = run('up');
  expect(up.status).toBe(0);
  expect(up.stdout).toContain(`KAFKA_BROKERS=127.0.0.1:${ports.kafka}`);
  const written = fs.readFileSync(path.join(stateDir, 'services.env'), 'utf8');
  expect(written).toContain(`MONGO_URL=mongodb://127.0.0.1:${ports.mongo}/`);
  const pids = ['kafka', 'registry', 'mongo'].map((n) =>
    Number(fs.readFileSync(path.join(stateDir, 'pids', `${n}.pid`), 'utf8')),
  );
  expect(pids.every(isAlive)).toBe(true);

  const status = run('status');
  expect(status.status).toBe(0);
  expect(status.stdout.match(/ready/g)).toHaveLength(3);
  const kafkaRow = status.stdout.split('\n').find((l) => l.startsWith('kafka '));
  // The default is a 4.x, and the row carries its port, pid and a data size.
  expect(kafkaRow).toMatch(
    new RegExp(`^kafka +ready +Kafka 4\\.\\d+\\.\\d+ +${ports.kafka} +${pids[0]} +[\\d.]+ (B|KiB|MiB)$`),
  );
  // Our log4j2 config is the one in effect: its layout ends each line with the logger name.
  expect(fs.readFileSync(path.join(stateDir, 'logs', 'kafka.log'), 'utf8')).toMatch(
    /Kafka Server started \(kafka\.server\.KafkaRaftServer\)/,
  );

  const again = run('up');
  expect(again.status).toBe(0);
  expect(again.stderr).toContain('kafka running, mongo (mongo-java-server) running, registry running');

  const down = run('down');
  expect(down.status).toBe(0);
  expect(pids.some(isAlive)).toBe(false);
  for (const port of Object.values(ports)) expect(await portOpen(port)).toBe(false);
  expect(fs.existsSync(path.join(stateDir, 'services.env'))).toBe(false);
  expect(run('status').status).toBe(3);

  // Back up on the data down kept, then reset: refused with no terminal and no --yes, done with --yes.
  expect(run('up').status).toBe(0);
  const restarted = ['kafka', 'registry', 'mongo'].map((n) =>
    Number(fs.readFileSync(path.join(stateDir, 'pids', `${n}.pid`), 'utf8')),
  );
  const refused = run('reset');
  expect(refused.status).toBe(2);
  expect(refused.stderr.trim().split('\n')).toEqual([
    expect.stringMatching(
      /^keyflow: services reset stops the local stack and deletes .*pass --yes to confirm$/,
    ),
  ]);
  expect(restarted.every(isAlive)).toBe(true);
  expect(fs.existsSync(path.join(stateDir, 'data', 'kafka', 'meta.properties'))).toBe(true);

  const wiped = run('reset', '--yes');
  expect(wiped.status).toBe(0);
  expect(wiped.stderr).toMatch(/stopped registry, mongo, kafka; deleted .*data \(/);
  expect(restarted.some(isAlive)).toBe(false);
  for (const port of Object.values(ports)) expect(await portOpen(port)).toBe(false);
  expect(fs.existsSync(path.join(stateDir, 'data'))).toBe(false);
  // Logs stay for whoever wants to read what happened.
  expect(fs.existsSync(path.join(stateDir, 'logs', 'kafka.log'))).toBe(true);
});

test('a port held by a process we did not start is refused with the setting to change', async () => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  onCleanup(() => new Promise((r) => holder.close(r)));
  const busy = (holder.address() as net.AddressInfo).port;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-services-busy-'));
  onCleanup(async () => fs.rmSync(stateDir, { recursive: true, force: true }));
  const res = spawnSync(process.execPath, [BIN, 'services', 'up'], {
    env: {
      ...process.env,
      KEYFLOW_STATE_DIR: stateDir,
      KEYFLOW_MONGO_PORT: String(busy),
      KEYFLOW_KAFKA_PORT: String(await freePort()),
      KEYFLOW_KAFKA_CONTROLLER_PORT: String(await freePort()),
      KEYFLOW_REGISTRY_PORT: String(await freePort()),
    },
    encoding: 'utf8',
    timeout: 240_000,
  });
  spawnSync(process.execPath, [BIN, 'services', 'down'], {
    env: { ...process.env, KEYFLOW_STATE_DIR: stateDir },
    timeout: 60_000,
  });
  expect(res.status).toBe(1);
  expect(res.stderr).toContain(
    `port ${busy} for mongo is taken by a process we did not start; stop it or set KEYFLOW_MONGO_PORT to a free port`,
  );
});
