#!/usr/bin/env node
// Run after any `npm install` that changes dependencies. The npm registry mirror our machines reach
// answers 404 for other platforms' optional binaries (e.g. @swc/core-darwin-arm64), so `npm install`
// leaves them out of package-lock.json and `npm ci` then refuses the lock as out of sync. This records
// each missing optional dependency as an optional entry; npm ci skips an optional package it cannot
// fetch, which is exactly right for another platform's binary.
const fs = require('node:fs');
const path = require('node:path');

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
fs.writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(`complete-lockfile: recorded ${added.length} optional package(s)\n`);
