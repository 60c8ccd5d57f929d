#!/usr/bin/env node
// Runs before `npm test` (and first thing in .ci/run): the local stack needs a JDK 17 (Kafka 4 brokers
// want Java 17; javac builds the mongo-java-server launcher) and Maven (every jar comes from Maven Central),
// the ops-page test drives Debian's Chromium, the alert-rules test runs promtool (Debian's prometheus
// package), the index test's explain server is SecantusDB in a Python virtualenv, and the benchmark's
// smoke test runs BullMQ on redis-server, the manifest test builds tools/manifest-check with Go
// (scripts/manifest-check.js, cached under ~/.cache/keyflow), and the trace test exports to an
// OpenTelemetry Collector built from the Go module proxy (scripts/otelcol.js, cached there too). Installs what is missing when we may
// (root with apt-get, as on CI and the project's machines); otherwise says exactly what to install, and fails.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');

const javaHome = process.env.JAVA_HOME;
const javaTool = (name) => (javaHome ? `${javaHome}/bin/${name}` : name);
/** `java -version` prints e.g. `openjdk version "17.0.15"` (or `"1.8.0_402"` on Java 8) to stderr. */
function javaMajor() {
  const res = spawnSync(javaTool('java'), ['-version'], { encoding: 'utf8' });
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${res.stdout ?? ''}${res.stderr ?? ''}`);
  if (!m) return 0;
  return m[1] === '1' && m[2] ? Number(m[2]) : Number(m[1]);
}

const needs = [
  {
    what: 'a JDK 17 or newer (java and javac)',
    present: () => javaMajor() >= 17 && spawnSync(javaTool('javac'), ['-version']).status === 0,
    pkg: 'openjdk-17-jdk-headless',
  },
  { what: 'mvn', present: () => spawnSync('mvn', ['-v']).status === 0, pkg: 'maven' },
  {
    what: 'chromium',
    present: () => fs.existsSync(process.env.CHROMIUM_PATH || '/usr/bin/chromium'),
    pkg: 'chromium',
  },
  { what: 'promtool', present: () => spawnSync('promtool', ['--version']).status === 0, pkg: 'prometheus' },
  {
    // SecantusDB, the index test's explain server, is pip-installed into a virtualenv.
    what: 'python3 with venv',
    present: () => spawnSync('python3', ['-c', 'import venv, ensurepip']).status === 0,
    pkg: 'python3-venv',
  },
  {
    what: 'redis-server',
    present: () =>
      spawnSync('redis-server', ['--version']).status === 0 || fs.existsSync('/usr/bin/redis-server'),
    pkg: 'redis-server',
  },
  {
    what: 'go (1.24 or newer, or a go that fetches that toolchain)',
    present: () => spawnSync('go', ['version']).status === 0,
    pkg: 'golang-go',
  },
];
/** Builds the Go tools once per source change (a no-op when the cached binaries are there). */
function buildManifestCheck() {
  try {
    require('./manifest-check').manifestCheckBinary();
    require('./otelcol').otelcolBinary();
  } catch (err) {
    process.stderr.write(`test-tools: ${err.message}\n`);
    process.exit(1);
  }
}
const missing = needs.filter((n) => !n.present());
if (missing.length === 0) {
  buildManifestCheck();
  process.exit(0);
}

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
buildManifestCheck();
