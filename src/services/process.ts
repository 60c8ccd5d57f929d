// Process helpers shared by the local services: detached spawn with a log file, pid files, port checks.
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
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
