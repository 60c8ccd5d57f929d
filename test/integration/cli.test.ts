// The `keyflow` command as a user runs it: start serves health and stops cleanly on SIGTERM, a bad
// setting or an unreachable broker stops start-up with one line, topology and dlq list print.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { cleanupAll, env, eventually, onCleanup, uniqueName, freePort } from '../helpers';

afterAll(cleanupAll);

const BIN = path.join(__dirname, '..', '..', 'bin', 'keyflow.js');

function keyflow(args: string[], extraEnv: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LOG_LEVEL: 'error', ...extraEnv },
    timeout: 60_000,
  });
}

test('keyflow start serves /healthz and /readyz, and SIGTERM drains and exits 0', async () => {
  const port = await freePort();
  const db = uniqueName('kfcli').replace(/-/g, '_');
  const child = spawn(process.execPath, [BIN, 'start'], {
    env: { ...process.env, PORT: String(port), ADMIN_PORT: '0', MONGO_DB: db, LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  onCleanup(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const ready = await eventually(
    async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
    },
    60_000,
    `/readyz 200 (stderr: ${stderr})`,
  );
  expect(JSON.stringify(ready)).toContain('mongo');
  expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect(metrics).toContain('process_cpu_seconds_total');
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  expect(await exit).toBe(0);
});

test('a bad setting stops start-up with one line naming it, no stack trace', () => {
  const res = keyflow(['start'], { KAFKA_BROKERS: 'localhost' });
  expect(res.status).toBe(1);
  expect(res.stderr.trim()).toBe(
    'keyflow: KAFKA_BROKERS="localhost" is invalid: each broker must be host:port',
  );
});

test('an unreachable broker stops start-up with one line naming the address', async () => {
  const port = await freePort();
  const res = keyflow(['start'], { KAFKA_BROKERS: `127.0.0.1:${port}`, KEYFLOW_STARTUP_WAIT_MS: '0' });
  expect(res.status).toBe(1);
  const lines = res.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^keyflow: Kafka at 127\\.0\\.0\\.1:${port} did not answer`));
});

test('keyflow topology prints text and Mermaid; unknown commands are refused', () => {
  const text = keyflow(['topology']);
  expect(text.status).toBe(0);
  expect(text.stdout).toContain('tenant-settings');
  const mermaid = keyflow(['topology', '--mermaid']);
  expect(mermaid.stdout).toMatch(/^flowchart/m);
  const bad = keyflow(['frobnicate']);
  expect(bad.status).toBe(2);
  expect(bad.stderr).toContain('unknown command "frobnicate"');
});

test('keyflow dlq list reads a stage’s letters; a wrong call explains its usage', () => {
  const list = keyflow(['dlq', 'list', uniqueName('nostage')], { MONGO_URL: env('MONGO_URL') });
  expect(list.status).toBe(0);
  expect(list.stdout).toMatch(/^0 letter\(s\) for /);
  const bad = keyflow(['dlq', 'purge', 'x']);
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/^keyflow: usage: keyflow dlq list\|replay/);
});
