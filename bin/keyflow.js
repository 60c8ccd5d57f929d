#!/usr/bin/env node
// Entry point of the `keyflow` command; the compiled CLI lives in dist/ (built by `npm ci` through `prepare`).
const path = require('node:path');
const fs = require('node:fs');
const main = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!fs.existsSync(main)) {
  process.stderr.write('keyflow: dist/ is missing; run `npm run build` (npm ci does it for you)\n');
  process.exit(1);
}
require(main).main(process.argv.slice(2));
