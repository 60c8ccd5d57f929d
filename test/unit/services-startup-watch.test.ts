// What `services up` does with a starting service's log: it relays the launcher's progress lines (and
// only those, whole), and gives up only after a stretch with none; readSince hands it the new text.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROGRESS_PREFIX, readSince, StartupWatch } from '../../src/services/process';

test('only whole progress lines are relayed, without their prefix; a split line waits for its end', () => {
  const watch = new StartupWatch(60_000, 0);
  expect(
    watch.observe(`netty says hello\n${PROGRESS_PREFIX}opening store x (2800.0 MB)\n[key`, 1000),
  ).toEqual(['opening store x (2800.0 MB)']);
  expect(watch.observe(`flow] still opening store (2s, file 2800.0 MB)\n`, 3000)).toEqual([
    'still opening store (2s, file 2800.0 MB)',
  ]);
  expect(watch.observe('INFO other line\n', 4000)).toEqual([]);
});

test('each progress line restarts the quiet period; other log lines do not', () => {
  const watch = new StartupWatch(60_000, 0);
  expect(watch.expired(60_000)).toBe(false);
  watch.observe(`${PROGRESS_PREFIX}still compacting store (58s)\n`, 58_000);
  expect(watch.expired(100_000)).toBe(false);
  watch.observe('a line that is not progress\n', 110_000);
  expect(watch.quietFor(118_001)).toBe(60_001);
  expect(watch.expired(118_001)).toBe(true);
});

test('readSince returns what a file gained since an offset, and copes with a missing file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kfwatch-'));
  const file = path.join(dir, 'mongo.log');
  expect(readSince(file, 0)).toEqual({ text: '', offset: 0 });
  fs.writeFileSync(file, 'old line\n');
  const start = readSince(file, 0).offset;
  fs.appendFileSync(file, `${PROGRESS_PREFIX}opening\n`);
  expect(readSince(file, start)).toEqual({ text: `${PROGRESS_PREFIX}opening\n`, offset: 9 + 18 });
  fs.rmSync(dir, { recursive: true, force: true });
});
