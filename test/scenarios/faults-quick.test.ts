// The CI-sized fault subset: `keyflow faults quick` on the test stack. Only scenarios that signal
// processor children (never a service the other tests share) are in it; each must end with nothing
// lost, doubled, wrong or stalled, by itself, and write its figures where it was told.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FaultFigures } from '../../src/faults/figures';
import { SCENARIOS } from '../../src/faults/scenarios';
import { adminClient, cleanupAll, freePort } from '../helpers';

afterAll(cleanupAll);

const BIN = path.join(__dirname, '..', '..', 'bin', 'keyflow.js');

function run(
  args: string[],
  extra: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, LOG_LEVEL: 'error', ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += String(d)));
    child.stderr.on('data', (d: Buffer) => (out += String(d)));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

const QUICK = SCENARIOS.filter((s) => s.quick).map((s) => s.name);

test('the quick subset is not empty and stops no shared service', () => {
  expect(QUICK.length).toBeGreaterThan(1);
  expect(SCENARIOS.filter((s) => s.quick && s.stopsServices)).toEqual([]);
});

test.each(QUICK)(
  '%s (quick) ends exact: nothing lost, doubled, wrong or stalled, recovered by itself',
  async (name) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-faults-'));
    const res = await run(['faults', name, '--quick', '--results', dir]);
    expect({ code: res.code, out: res.out }).toEqual({
      code: 0,
      out: expect.stringContaining(`${name}: PASS`),
    });

    const [row, ...more] = (
      JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8')) as { scenarios: FaultFigures[] }
    ).scenarios;
    expect(more).toEqual([]);
    expect(row).toMatchObject({
      scenario: name,
      lost: 0,
      duplicates: 0,
      wrong: 0,
      stalled: 0,
      deadLettered: 0,
      restarts: 0,
    });
    expect(row!.effectsOut).toBeGreaterThan(0);
    expect(row!.recoverMs).not.toBeNull();
    expect(fs.readFileSync(path.join(dir, 'report.md'), 'utf8')).toContain(name);

    // Nothing left behind: no topic or consumer group of its arena (a benchmark running beside it
    // checks that no bench.* group is left, so a fault arena must neither linger nor share the name).
    const admin = await adminClient();
    const mine = (n: string) => n.startsWith('faults.') && n.includes(`.${name}.`);
    expect((await admin.listTopics()).filter(mine)).toEqual([]);
    expect((await admin.listGroups()).groups.map((g) => g.groupId).filter(mine)).toEqual([]);
  },
);

test('a scenario that stops a service is refused on a stack the suite does not own', async () => {
  const stopper = SCENARIOS.find((s) => s.stopsServices)!;
  // A state dir whose own stack is elsewhere: the test stack in the environment is not the suite's.
  const own: Record<string, string> = {
    KEYFLOW_STATE_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'kf-own-')),
  };
  for (const k of ['KAFKA', 'KAFKA_CONTROLLER', 'REGISTRY', 'MONGO'])
    own[`KEYFLOW_${k}_PORT`] = String(await freePort());
  const res = await run(['faults', stopper.name], own);
  // A usage error: exit code 2, one line naming the settings to unset, and nothing stopped.
  expect(res.code).toBe(2);
  expect(res.out).toMatch(/runs only on the local stack; unset KAFKA_BROKERS/);
});
