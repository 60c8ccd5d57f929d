#!/usr/bin/env node
// Builds the OpenTelemetry Collector the trace test exports to: the collector builder (ocb) from the Go
// module proxy, given tools/otelcol/builder-config.yaml (the OTLP receiver and the debug exporter, core
// modules only), into ~/.cache/keyflow/otelcol-<hash of the manifest>, once per manifest change, and
// prints the binary's path. `npm test`'s pretest (scripts/test-tools.js) and test/scenarios/traces.test.ts
// call it. A first build takes minutes (module downloads and a cold Go build cache); later runs none.
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const BUILDER = 'go.opentelemetry.io/collector/cmd/builder';
const BUILDER_VERSION = 'v0.165.0';
const manifest = path.join(__dirname, '..', 'tools', 'otelcol', 'builder-config.yaml');

function cacheDir() {
  const dir = process.env.KEYFLOW_CACHE_DIR || path.join(os.homedir(), '.cache', 'keyflow');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function builderBinary(cache) {
  const bin = path.join(cache, `ocb-${BUILDER_VERSION}`);
  if (fs.existsSync(bin)) return bin;
  const gobin = fs.mkdtempSync(path.join(cache, 'ocb-'));
  process.stderr.write(`otelcol: installing the collector builder ${BUILDER_VERSION} (first run only)...\n`);
  const res = spawnSync('go', ['install', `${BUILDER}@${BUILDER_VERSION}`], {
    stdio: 'inherit',
    env: { ...process.env, GOBIN: gobin },
  });
  if (res.status !== 0) throw new Error(`otelcol: go install ${BUILDER}@${BUILDER_VERSION} failed`);
  fs.renameSync(path.join(gobin, 'builder'), bin);
  fs.rmSync(gobin, { recursive: true, force: true });
  return bin;
}

function otelcolBinary() {
  const text = fs.readFileSync(manifest, 'utf8');
  const hash = crypto.createHash('sha256').update(BUILDER_VERSION).update(text).digest('hex').slice(0, 16);
  const cache = cacheDir();
  const bin = path.join(cache, `otelcol-${hash}`);
  if (fs.existsSync(bin)) return bin;
  const builder = builderBinary(cache);
  const work = fs.mkdtempSync(path.join(cache, 'otelcol-build-'));
  try {
    const config = path.join(work, 'builder-config.yaml');
    fs.writeFileSync(config, text.replace(/^dist:\n/m, `dist:\n  output_path: ${path.join(work, 'out')}\n`));
    process.stderr.write(
      'otelcol: building the OpenTelemetry Collector (first run only; a few minutes)...\n',
    );
    const started = Date.now();
    const res = spawnSync(builder, ['--config', config], { stdio: 'inherit' });
    if (res.status !== 0) throw new Error(`otelcol: the collector builder failed on ${manifest}`);
    fs.renameSync(path.join(work, 'out', 'keyflow-otelcol'), bin);
    process.stderr.write(`otelcol: built ${bin} in ${Math.round((Date.now() - started) / 1000)} s\n`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return bin;
}

module.exports = { otelcolBinary };

if (require.main === module) {
  try {
    process.stdout.write(`${otelcolBinary()}\n`);
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
