// Process helpers shared by the local services: detached spawn with a log file, pid files, port checks.
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { StackContext } from './types';
import { KeyflowError } from '../errors';

export function logFile(ctx: StackContext, name: string): string {
  return path.join(ctx.stateDir, 'logs', `${name}.log`);
}

export function pidFile(ctx: StackContext, name: string): string {
  return path.join(ctx.stateDir, 'pids', `${name}.pid`);
}

/** Spawns a long-running process detached from us, stdout+stderr appended to the service log. */
export function spawnDetached(
  ctx: StackContext,
  name: string,
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): number {
  fs.mkdirSync(path.dirname(logFile(ctx, name)), { recursive: true });
  const fd = fs.openSync(logFile(ctx, name), 'a');
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  if (child.pid === undefined) {
    throw new KeyflowError('SERVICE_START_FAILED', `could not spawn ${command} for ${name}`, {
      retriable: false,
    });
  }
  child.unref();
  return child.pid;
}

/** Runs a short command to completion (an install step); throws with its output tail when it fails. */
export function runChecked(command: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const res = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  const out = `${res.stdout ?? ''}${res.stderr ?? ''}`;
  if (res.error || res.status !== 0) {
    const tail = out.split('\n').slice(-25).join('\n');
    throw new KeyflowError(
      'SERVICE_INSTALL_FAILED',
      `\`${command} ${args.join(' ')}\` failed (${res.error?.message ?? `exit ${res.status}`}):\n${tail}`,
      { retriable: false },
    );
  }
  return out;
}

export interface InstallWatch {
  /** How often to report (default 5 s). */
  everyMs?: number;
  /** One line on how far the step got, or undefined to stay quiet this time. */
  report(elapsedMs: number): string | undefined;
  progress: (line: string) => void;
}

/**
 * runChecked without blocking the event loop, for the long install steps (downloads, builds): every
 * `watch.everyMs` the step says how far it got. Same failure as runChecked: its output tail.
 */
export function runWatched(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number },
  watch: InstallWatch,
): Promise<string> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (d: Buffer) => {
      out += String(d);
      if (out.length > 4 * 1024 * 1024) out = out.slice(-1024 * 1024); // the tail is what a failure shows
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const ticker = setInterval(() => {
      const line = watch.report(Date.now() - started);
      if (line) watch.progress(line);
    }, watch.everyMs ?? 5000);
    const killer = opts.timeout ? setTimeout(() => child.kill('SIGKILL'), opts.timeout) : undefined;
    const fail = (why: string) => {
      const tail = out.split('\n').slice(-25).join('\n');
      reject(
        new KeyflowError(
          'SERVICE_INSTALL_FAILED',
          `\`${command} ${args.join(' ')}\` failed (${why}):\n${tail}`,
          {
            retriable: false,
          },
        ),
      );
    };
    child.once('error', (err) => {
      clearInterval(ticker);
      clearTimeout(killer);
      fail(err.message);
    });
    child.once('close', (code, signal) => {
      clearInterval(ticker);
      clearTimeout(killer);
      if (code === 0) resolve(out);
      else fail(signal ? `killed by ${signal}` : `exit ${code}`);
    });
  });
}

/** 142268239 → "135.7 MB" (MiB, as download tools show them). */
export function formatMegabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** `fetching X: 45.2/135.7 MB (33%), 4.1 MB/s`; before any byte arrives, and once all have, what it waits for. */
export function downloadLine(
  what: string,
  bytes: number,
  total: number,
  bytesPerSecond: number,
  elapsedMs: number,
): string {
  const seconds = Math.round(elapsedMs / 1000);
  if (bytes <= 0) return `fetching ${what}: waiting for the download to start (${seconds}s)`;
  if (bytes >= total)
    return `fetching ${what}: downloaded ${formatMegabytes(total)}, unpacking (${seconds}s)`;
  const pct = Math.floor((bytes / total) * 100);
  const done = (bytes / 1024 / 1024).toFixed(1);
  return `fetching ${what}: ${done}/${formatMegabytes(total)} (${pct}%), ${formatMegabytes(bytesPerSecond)}/s`;
}

/** An InstallWatch report for a download whose bytes so far `read` returns; the rate is over the last interval. */
export function downloadReport(what: string, total: number, read: () => number): InstallWatch['report'] {
  let last = { bytes: 0, ms: 0 };
  return (ms) => {
    const bytes = read();
    const rate = ms > last.ms ? ((bytes - last.bytes) * 1000) / (ms - last.ms) : 0;
    last = { bytes, ms };
    return downloadLine(what, bytes, total, Math.max(0, rate), ms);
  };
}

/** Maven's local repository: `-Dmaven.repo.local` in MAVEN_OPTS if set, else ~/.m2/repository. */
export function mavenLocalRepo(env: NodeJS.ProcessEnv = process.env): string {
  const set = /-Dmaven\.repo\.local=(\S+)/.exec(env.MAVEN_OPTS ?? '');
  return set ? path.resolve(set[1]!) : path.join(os.homedir(), '.m2', 'repository');
}

/** Bytes of `name` and its partial downloads (`name.part`, ...) in a folder; 0 when none is there yet. */
export function bytesOf(dir: string, name: string): number {
  let total = 0;
  try {
    for (const f of fs.readdirSync(dir)) {
      if (f.startsWith(name) && !f.endsWith('.lock') && !f.endsWith('.sha1')) {
        total += fs.statSync(path.join(dir, f)).size;
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return total;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

/** The prefix of a launcher's progress line in its log (see services/mongo-java-server). */
export const PROGRESS_PREFIX = '[keyflow] ';

/**
 * Watches a starting service's log: relays its progress lines and says when start-up has gone `quietMs`
 * without one. A store that takes minutes to open keeps `services up` waiting as long as it reports;
 * one that hangs silent still fails after `quietMs`.
 */
export class StartupWatch {
  private partial = '';
  private lastSign: number;

  constructor(
    private readonly quietMs: number,
    now: number,
  ) {
    this.lastSign = now;
  }

  /** Takes the log text written since the last call; returns its complete progress lines, prefix cut. */
  observe(text: string, now: number): string[] {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    const progress = lines
      .filter((l) => l.startsWith(PROGRESS_PREFIX))
      .map((l) => l.slice(PROGRESS_PREFIX.length).trim());
    if (progress.length > 0) this.lastSign = now;
    return progress;
  }

  /** Milliseconds since the last progress line (or the start). */
  quietFor(now: number): number {
    return now - this.lastSign;
  }

  expired(now: number): boolean {
    return this.quietFor(now) > this.quietMs;
  }
}

/** Bytes of a file now; 0 when it does not exist yet. */
export function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** The text a growing file gained since `offset`, and the offset after it. */
export function readSince(file: string, offset: number): { text: string; offset: number } {
  const size = sizeOf(file);
  if (size <= offset) return { text: '', offset: Math.min(offset, size) };
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(size - offset, 1024 * 1024));
    const n = fs.readSync(fd, buf, 0, buf.length, offset);
    return { text: buf.subarray(0, n).toString('utf8'), offset: offset + n };
  } finally {
    fs.closeSync(fd);
  }
}
