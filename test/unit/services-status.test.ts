// `services status` sizes: bytes on disk as du counts them, printed in binary units; and the table itself.
// Also when `services reset` may delete without asking.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resetConsent } from '../../src/cli/services';
import { dirBytes, formatBytes, statusTable, type ServiceStatus } from '../../src/services/status';

test('formatBytes picks the unit and keeps at most three digits', () => {
  expect(formatBytes(0)).toBe('0 B');
  expect(formatBytes(1023)).toBe('1023 B');
  expect(formatBytes(1024)).toBe('1 KiB');
  expect(formatBytes(1536)).toBe('1.5 KiB');
  expect(formatBytes(53_248)).toBe('52 KiB');
  expect(formatBytes(12 * 1024 * 1024)).toBe('12 MiB');
  expect(formatBytes(1.25 * 1024 ** 3)).toBe('1.3 GiB');
  // Just below a unit boundary rounds into the next unit rather than printing "1024 KiB".
  expect(formatBytes(1024 * 1024 - 1)).toBe('1 MiB');
  expect(() => formatBytes(-1)).toThrow(RangeError);
});

test('dirBytes counts allocated blocks, so a sparse file weighs what it holds', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-dirbytes-'));
  try {
    expect(dirBytes(path.join(dir, 'missing'))).toBe(0);
    const empty = dirBytes(dir);
    // Like Kafka's preallocated index files: 10 MiB long, nothing written.
    const sparsePath = path.join(dir, 'sparse.index');
    fs.writeFileSync(sparsePath, '');
    fs.truncateSync(sparsePath, 10 * 1024 * 1024);
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'data.log'), Buffer.alloc(64 * 1024, 1));
    const used = dirBytes(dir) - empty;
    const subDir = fs.lstatSync(path.join(dir, 'sub')).blocks * 512;
    const sparse = fs.lstatSync(sparsePath).blocks * 512;
    expect(used).toBe(subDir + fs.lstatSync(path.join(dir, 'sub', 'data.log')).blocks * 512 + sparse);
    expect(used).toBeGreaterThanOrEqual(64 * 1024);
    expect(used).toBeLessThan(10 * 1024 * 1024);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the status table aligns its columns and shows no pid for a stopped service', () => {
  const rows: ServiceStatus[] = [
    {
      name: 'kafka',
      label: 'Kafka 4.4.0',
      pid: 41,
      alive: true,
      ready: true,
      port: 29092,
      dataBytes: 53_248,
    },
    {
      name: 'registry',
      label: 'Apicurio Registry 2.6.13.Final',
      pid: 7,
      alive: false,
      ready: false,
      port: 28081,
      dataBytes: 0,
    },
  ];
  expect(statusTable(rows)).toEqual([
    'service   state    version                         port   pid  data',
    'kafka     ready    Kafka 4.4.0                     29092  41   52 KiB',
    'registry  stopped  Apicurio Registry 2.6.13.Final  28081  -    0 B',
  ]);
});

test('reset deletes without asking only with --yes, asks at a terminal, and refuses otherwise', () => {
  expect(resetConsent({ yes: true, interactive: false })).toBe('proceed');
  expect(resetConsent({ yes: true, interactive: true })).toBe('proceed');
  expect(resetConsent({ yes: false, interactive: true })).toBe('ask');
  expect(resetConsent({ yes: false, interactive: false })).toBe('refuse');
});
