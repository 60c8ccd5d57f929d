#!/usr/bin/env node
// Builds tools/manifest-check (our Go validator of the Kubernetes manifests and the compose file) into
// ~/.cache/keyflow/manifest-check-<hash of its sources>, once per source change, and prints the binary's
// path. Its modules come from the Go module proxy into Go's own module cache. `npm test`'s pretest (through
// scripts/test-tools.js) and test/integration/manifests.test.ts call it.
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const src = path.join(__dirname, '..', 'tools', 'manifest-check');

function manifestCheckBinary() {
  const hash = crypto.createHash('sha256');
  for (const f of ['go.mod', 'go.sum', 'main.go']) hash.update(fs.readFileSync(path.join(src, f)));
  const cache = process.env.KEYFLOW_CACHE_DIR || path.join(os.homedir(), '.cache', 'keyflow');
  const bin = path.join(cache, `manifest-check-${hash.digest('hex').slice(0, 16)}`);
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(cache, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  process.stderr.write(`manifest-check: building ${path.relative(process.cwd(), src)} (first run only)...\n`);
  const res = spawnSync('go', ['build', '-trimpath', '-o', tmp, '.'], { cwd: src, stdio: 'inherit' });
  if (res.status !== 0) throw new Error(`manifest-check: go build failed in ${src}`);
  fs.renameSync(tmp, bin);
  return bin;
}

module.exports = { manifestCheckBinary };

if (require.main === module) {
  try {
    process.stdout.write(`${manifestCheckBinary()}\n`);
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
