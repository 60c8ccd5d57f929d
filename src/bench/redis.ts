// A throwaway Redis for the BullMQ contestant: Debian's redis-server as a child of the bench process, on a
// free loopback port, without persistence, stopped by the harness and never left behind when node exits.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { KeyflowError } from '../errors';
import { portOpen, runChecked } from '../services/process';

const DEBIAN_BINARY = '/usr/bin/redis-server';
const APT_INSTALL = ['install', '-y', '--no-install-recommends', 'redis-server'];
const INSTALL_HINT = `sudo apt-get ${APT_INSTALL.join(' ')}`;
const APT_TIMEOUT_MS = 10 * 60_000;
const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
/** Lines of redis-server output kept for error messages. */
const OUTPUT_LINES = 30;
/** Times a picked free port may be lost to another process before redis-server binds it. */
const PORT_ATTEMPTS = 3;

export interface LocalRedis {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process is gone. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** Working folder of the server (created); nothing is persisted there. */
  dir: string;
  /** A fixed port; by default a free one is picked. */
  port?: number;
  /** Progress lines for the person waiting. */
  out: (line: string) => void;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function findRedisServer(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, 'redis-server'))) return path.join(dir, 'redis-server');
  }
  return isExecutable(DEBIAN_BINARY) ? DEBIAN_BINARY : undefined;
}

/**
 * Path of redis-server. When it is missing and we are root on a machine with apt-get, installs Debian's
 * redis-server package (apt-get update only when the first install attempt fails); otherwise throws with
 * the command to run.
 */
export async function ensureRedisServer(out: (line: string) => void): Promise<string> {
  const found = findRedisServer();
  if (found) return found;

  const root = process.getuid?.() === 0;
  if (!root || spawnSync('apt-get', ['--version']).status !== 0) {
    throw new KeyflowError(
      'SERVICE_NOT_INSTALLED',
      root
        ? 'redis-server is not installed (looked on PATH and /usr/bin) and apt-get is not available; ' +
            'install Redis 6.2 or newer and put redis-server on PATH'
        : `redis-server is not installed (looked on PATH and /usr/bin); install it with: ${INSTALL_HINT}`,
      { retriable: false },
    );
  }

  // Note: where services may start (no policy-rc.d forbidding it), the package also starts the system's
  // own redis on 6379. The bench never uses that one; it runs its own on a free port.
  const apt = (args: string[]) =>
    runChecked('apt-get', args, {
      timeout: APT_TIMEOUT_MS,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  out(`redis-server not found; installing it with: apt-get ${APT_INSTALL.join(' ')} (first run only)`);
  try {
    apt(APT_INSTALL);
  } catch (first) {
    // The last line apt printed, typically "E: Unable to locate package redis-server".
    const reason = first instanceof Error ? lastLine(first.message) : '';
    out(`apt-get install failed${reason ? ` (${reason})` : ''}; running apt-get update and retrying`);
    try {
      apt(['update']);
      apt(APT_INSTALL);
    } catch (err) {
      throw new KeyflowError(
        'SERVICE_INSTALL_FAILED',
        `could not install redis-server with apt-get: ${err instanceof Error ? err.message : String(err)}`,
        { retriable: false, cause: err },
      );
    }
  }
  const installed = findRedisServer();
  if (!installed) {
    throw new KeyflowError(
      'SERVICE_INSTALL_FAILED',
      `apt-get installed redis-server but there is still no executable ${DEBIAN_BINARY}`,
      { retriable: false },
    );
  }
  out(`installed ${installed}`);
  return installed;
}

function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim());
  return lines.at(-1)?.trim() ?? '';
}

/** A port nobody listens on right now (the kernel's pick for port 0); someone may still take it first. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() =>
        port > 0 ? resolve(port) : reject(new Error('could not read the port picked by the kernel')),
      );
    });
  });
}

/** One PING over a plain socket: true on `+PONG`, false on anything else (refused, -LOADING, timeout). */
function ping(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setEncoding('utf8');
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.once('close', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** The version `redis-server --version` reports, e.g. "7.0.15"; empty when it cannot be read. */
function redisVersion(binary: string): string {
  const res = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return /v=(\S+)/.exec(res.stdout ?? '')?.[1] ?? '';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class StartFailure extends KeyflowError {
  constructor(
    message: string,
    readonly portTaken: boolean,
  ) {
    super('SERVICE_START_FAILED', message, { retriable: false });
  }
}

/**
 * Starts redis-server on 127.0.0.1 (a free port unless one is given), with `dir` as its working folder and
 * no RDB or AOF persistence, and resolves once it answers PING. The process is a child of this one: it is
 * killed on process exit if stop() was never called.
 */
export async function startRedis(opts: StartRedisOptions): Promise<LocalRedis> {
  const binary = await ensureRedisServer(opts.out);
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  if (opts.port !== undefined) {
    if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
      throw new KeyflowError('USAGE', `redis port must be an integer from 1 to 65535, not ${opts.port}`);
    }
    // Whatever holds the port would answer our PING and take the bench's jobs.
    if (await portOpen(opts.port)) {
      throw new KeyflowError('SERVICE_PORT_BUSY', `port ${opts.port} for redis-server is already in use`, {
        retriable: false,
        details: { port: opts.port },
      });
    }
    return launch(binary, dir, opts.port, opts.out);
  }
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(binary, dir, port, opts.out);
    } catch (err) {
      if (!(err instanceof StartFailure && err.portTaken) || attempt >= PORT_ATTEMPTS) throw err;
      opts.out(`port ${port} was taken before redis-server bound it; trying another`);
    }
  }
}

async function launch(
  binary: string,
  dir: string,
  port: number,
  out: (line: string) => void,
): Promise<LocalRedis> {
  const version = redisVersion(binary);
  out(`starting redis-server${version ? ` ${version}` : ''} on 127.0.0.1:${port}`);
  // No config file: the built-in defaults plus these, so the machine's /etc/redis/redis.conf plays no part.
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'yes',
    '--save',
    '', // no RDB snapshots
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    // Redis's built-in default, stated so no config can change it: BullMQ needs writes refused when
    // memory is full, never its keys evicted, and warns at every connection otherwise.
    '--maxmemory-policy',
    'noeviction',
  ];
  const child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

  const lines: string[] = [];
  const collect = (stream: NodeJS.ReadableStream) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) if (line.trim()) lines.push(line.trimEnd());
      lines.splice(0, Math.max(0, lines.length - OUTPUT_LINES));
    });
  };
  collect(child.stdout);
  collect(child.stderr);
  const output = () => (lines.length ? lines.join('\n') : '(no output)');

  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      resolve();
    });
    child.once('exit', () => resolve());
  });
  // After 'close' its last output lines have been read too.
  const closed = new Promise<void>((resolve) => {
    child.once('error', () => resolve());
    child.once('close', () => resolve());
  });
  const running = () => spawnError === undefined && child.exitCode === null && child.signalCode === null;

  // Synchronous, so it also runs on process.exit() and after an uncaught exception. A SIGKILL of node, or
  // a SIGTERM it has no handler for, skips 'exit': a caller that handles signals calls stop() there.
  const killOnExit = () => {
    if (running()) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (running()) {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), STOP_GRACE_MS)));
        const gone = await Promise.race([exited.then(() => true), grace]);
        clearTimeout(timer);
        if (!gone) {
          out(`redis-server (pid ${child.pid}) ignored SIGTERM for ${STOP_GRACE_MS / 1000}s; killing it`);
          child.kill('SIGKILL');
        }
        await exited;
      }
      process.removeListener('exit', killOnExit);
    })();
    return stopping;
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (running() && (await ping(port)) && running()) {
      return { url: `redis://127.0.0.1:${port}`, port, stop };
    }
    if (!running()) {
      await closed;
      await stop();
      const how = spawnError
        ? `could not be started (${spawnError.message})`
        : `exited during start-up (${child.signalCode ?? `exit ${child.exitCode}`})`;
      throw new StartFailure(
        `redis-server ${how}; last output:\n${output()}`,
        /address already in use/i.test(output()),
      );
    }
    await sleep(100);
  }
  await stop();
  throw new StartFailure(
    `redis-server did not answer PING on 127.0.0.1:${port} within ${READY_TIMEOUT_MS / 1000}s; last output:\n${output()}`,
    false,
  );
}
