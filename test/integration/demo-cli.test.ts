// `keyflow demo --once` as a user runs it, here without a terminal: standard output carries only the
// demo's own lines and ends with the summary, nothing reaches stderr, and the processor's JSON log is
// in the file the demo names.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanupAll, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

const BIN = path.join(__dirname, '..', '..', 'bin', 'keyflow.js');

test('the demo prints its report and summary, and keeps the log in its file', async () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kfdemo-'));
  onCleanup(async () => fs.rmSync(stateDir, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    ADMIN_PORT: '0',
    MONGO_DB: uniqueName('kfdemo').replace(/-/g, '_'),
    KEYFLOW_STATE_DIR: stateDir,
  };
  delete env.LOG_LEVEL;
  delete env.KEYFLOW_LOG_FILE;
  const child = spawn(process.execPath, [BIN, 'demo', '--once'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  onCleanup(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => (stderr += String(d)));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));

  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  const lines = stdout.trimEnd().split('\n');
  expect(lines.filter((l) => l.trimStart().startsWith('{'))).toEqual([]);
  const logFile = path.join(stateDir, 'logs', 'demo.log');
  expect(lines[0]).toBe(
    `Logs of this run: ${path.relative(process.cwd(), logFile)} (set LOG_LEVEL to see them here instead)`,
  );
  // The demo names the Node that ran it (npm scripts put the project's own Node 24 first) and the client.
  expect(lines).toContain(
    `Starting the processor (every stage + the HTTP server) on Node ${process.version}, Kafka client ${process.env.KEYFLOW_KAFKA_CLIENT ?? 'kafkajs'}...`,
  );
  expect(process.version).toMatch(/^v24\./);
  const summary = lines.slice(lines.indexOf('Summary:'));
  expect(summary.map((l) => l.trim().split(/\s{2,}/)[0])).toEqual([
    'Summary:',
    'services ready',
    'processor ready',
    'end to end',
    'wall time',
    'log',
  ]);
  expect(summary[3]).toMatch(/\d+ events in [\d.]+s, \d+ events\/s/);
  const logged = fs.readFileSync(logFile, 'utf8').trim().split('\n');
  expect(logged.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('processor started');
});
