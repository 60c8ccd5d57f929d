#!/usr/bin/env node
// Runs before `npm test`: the ops-page test drives Debian's Chromium, the alert-rules test runs
// promtool (Debian's prometheus package) and the benchmark's smoke test runs BullMQ on redis-server. Installs what is missing when we may (root with apt-get, as
// on CI and the project's machines); otherwise says exactly what to install, and fails.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');

const needs = [
  {
    what: 'chromium',
    present: () => fs.existsSync(process.env.CHROMIUM_PATH || '/usr/bin/chromium'),
    pkg: 'chromium',
  },
  { what: 'promtool', present: () => spawnSync('promtool', ['--version']).status === 0, pkg: 'prometheus' },
  {
    what: 'redis-server',
    present: () =>
      spawnSync('redis-server', ['--version']).status === 0 || fs.existsSync('/usr/bin/redis-server'),
    pkg: 'redis-server',
  },
];
const missing = needs.filter((n) => !n.present());
if (missing.length === 0) process.exit(0);

const pkgs = missing.map((n) => n.pkg);
const canInstall = process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0;
if (!canInstall) {
  process.stderr.write(
    `test-tools: missing ${missing.map((n) => n.what).join(', ')}; install with: sudo apt-get install -y ${pkgs.join(' ')}\n`,
  );
  process.exit(1);
}
process.stderr.write(`test-tools: installing ${pkgs.join(' ')} with apt-get (first run only)...\n`);
const run = (args) =>
  spawnSync('apt-get', args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
if (
  run(['update', '-qq']).status !== 0 ||
  run(['install', '-y', '-qq', '--no-install-recommends', ...pkgs]).status !== 0
) {
  process.stderr.write(`test-tools: apt-get could not install ${pkgs.join(' ')}\n`);
  process.exit(1);
}
const still = missing.filter((n) => !n.present());
if (still.length) {
  process.stderr.write(`test-tools: still missing after install: ${still.map((n) => n.what).join(', ')}\n`);
  process.exit(1);
}
