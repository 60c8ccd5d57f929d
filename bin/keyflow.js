#!/usr/bin/env node
// Entry point of the `keyflow` command; the compiled CLI lives in dist/ (built by `npm ci` through `prepare`).
const path = require('node:path');
const fs = require('node:fs');
const main = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
// package.json asks for Node >= 24.6 and brings it (node-<os>-<cpu>): npm scripts and npx find it first on
// PATH, but `node bin/keyflow.js` or a global link run whatever Node the shell finds. An older one is
// refused here, in one line: carried on, it failed later and far from the cause (@platformatic/kafka, used
// by every change-topic check, calls Promise.withResolvers, which Node 20 lacks).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 24 || (major === 24 && minor < 6)) {
  process.stderr.write(
    `keyflow: this is Node ${process.version}, Keyflow needs 24.6 or later; run it through npm ` +
      "(`npm run keyflow -- <command>`), which uses the project's own Node 24\n",
  );
  process.exit(1);
}
if (!fs.existsSync(main)) {
  process.stderr.write('keyflow: dist/ is missing; run `npm run build` (npm ci does it for you)\n');
  process.exit(1);
}
require(main).main(process.argv.slice(2));
