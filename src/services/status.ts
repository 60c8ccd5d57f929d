// What `keyflow services status` reports per service, how big its data is on disk, and the table it prints.
import fs from 'node:fs';
import path from 'node:path';

export interface ServiceStatus {
  name: string;
  /** "Kafka 4.4.0": what this process runs when alive, else what `up` would start. */
  label: string;
  pid: number | undefined;
  alive: boolean;
  ready: boolean;
  port: number;
  /** Bytes on disk under the service's data dirs (allocated blocks, as du counts them). */
  dataBytes: number;
}

/**
 * Allocated bytes under `dir`, not the files' apparent sizes: Kafka preallocates a 10 MiB sparse index and
 * time index per partition segment, which would make an empty broker look hundreds of MiB big.
 * Symlinks are not followed; a missing dir is 0.
 */
export function dirBytes(dir: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  // blocks counts 512-byte units wherever POSIX stat does; Windows reports none, so size is the best there.
  const own = process.platform === 'win32' ? stat.size : stat.blocks * 512;
  if (!stat.isDirectory()) return own;
  let total = own;
  for (const entry of fs.readdirSync(dir)) {
    try {
      total += dirBytes(path.join(dir, entry));
    } catch (err) {
      // A running broker deletes segments and index files while we walk; a vanished entry counts 0.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return total;
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

/** 0 B, 512 B, 1.5 KiB, 12 MiB, 1.2 GiB: three significant digits at most, binary units as du -h uses. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`not a byte count: ${bytes}`);
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  // 1023.9 KiB would print as "1024 KiB"; carry into the next unit instead.
  if (Number(value.toFixed(value < 10 ? 1 : 0)) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = value < 10 ? value.toFixed(1).replace(/\.0$/, '') : value.toFixed(0);
  return `${shown} ${UNITS[unit]}`;
}

export function stateOf(s: Pick<ServiceStatus, 'ready' | 'alive'>): string {
  return s.ready ? 'ready' : s.alive ? 'starting or unhealthy' : 'stopped';
}

/** One header line, then one aligned line per service. */
export function statusTable(rows: ServiceStatus[]): string[] {
  const cells = [
    ['service', 'state', 'version', 'port', 'pid', 'data'],
    ...rows.map((r) => [
      r.name,
      stateOf(r),
      r.label,
      String(r.port),
      r.alive && r.pid !== undefined ? String(r.pid) : '-',
      formatBytes(r.dataBytes),
    ]),
  ];
  const widths = cells[0]!.map((_, col) => Math.max(...cells.map((row) => row[col]!.length)));
  return cells.map((row) =>
    row
      .map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]!)))
      .join('  ')
      .trimEnd(),
  );
}
