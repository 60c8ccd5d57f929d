// What a first `services up` says while it downloads: bytes so far of the known total with the recent
// rate, a waiting line before any byte arrives, an unpacking line after the last; bytes are read from
// Maven's local repository, partial files included.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bytesOf, downloadLine, downloadReport, mavenLocalRepo } from '../../src/services/process';

const MB = 1024 * 1024;

test('a download line shows MB of the total, the percentage and the rate', () => {
  expect(downloadLine('Apicurio Registry', 45.25 * MB, 135.7 * MB, 4.1 * MB, 12_000)).toBe(
    'fetching Apicurio Registry: 45.3/135.7 MB (33%), 4.1 MB/s',
  );
  expect(downloadLine('X', 0, 10 * MB, 0, 4_600)).toBe('fetching X: waiting for the download to start (5s)');
  expect(downloadLine('X', 10 * MB, 10 * MB, 0, 9_000)).toBe(
    'fetching X: downloaded 10.0 MB, unpacking (9s)',
  );
});

test('the rate is over the last interval, not since the step began', () => {
  const sizes = [0, 0, 20 * MB, 30 * MB];
  const report = downloadReport('X', 100 * MB, () => sizes.shift()!);
  expect(report(5_000)).toContain('waiting');
  expect(report(10_000)).toContain('waiting');
  expect(report(15_000)).toBe('fetching X: 20.0/100.0 MB (20%), 4.0 MB/s');
  expect(report(20_000)).toBe('fetching X: 30.0/100.0 MB (30%), 2.0 MB/s');
});

test('bytesOf counts the artifact and its partial download, not checksums or locks', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kfbytes-'));
  expect(bytesOf(path.join(dir, 'absent'), 'a.zip')).toBe(0);
  fs.writeFileSync(path.join(dir, 'a.zip.part'), Buffer.alloc(300));
  fs.writeFileSync(path.join(dir, 'a.zip.part.lock'), Buffer.alloc(7));
  fs.writeFileSync(path.join(dir, 'a.zip.sha1'), Buffer.alloc(40));
  fs.writeFileSync(path.join(dir, 'b.zip'), Buffer.alloc(99));
  expect(bytesOf(dir, 'a.zip')).toBe(300);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('Maven’s local repository follows -Dmaven.repo.local in MAVEN_OPTS', () => {
  expect(mavenLocalRepo({})).toBe(path.join(os.homedir(), '.m2', 'repository'));
  expect(mavenLocalRepo({ MAVEN_OPTS: '-Xmx1g -Dmaven.repo.local=/tmp/m2 -B' })).toBe('/tmp/m2');
});
