// Toxiproxy, the fault proxy of the network scenarios: built once with `go install` into the download
// cache, started as a process of the suite's own (pid under <stateDir>/pids), driven over its HTTP API.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyflowError } from '../errors';
import {
  isAlive,
  logFile,
  pidFile,
  portOpen,
  runChecked,
  runWatched,
  spawnDetached,
  tail,
} from '../services/process';
import type { StackContext } from '../services/types';

export const TOXIPROXY_VERSION = '2.12.0';
const MODULE = 'github.com/Shopify/toxiproxy/v2/cmd/server';
const BUILD_TIMEOUT_MS = 20 * 60_000;

/** The four ports from KEYFLOW_FAULT_PROXY_PORT: the API, then what the proxies and the broker listen on. */
export interface FaultProxyPorts {
  api: number;
  /** Toxiproxy's Kafka proxy; the broker's proxied listener advertises this port. */
  kafka: number;
  /** The broker's second listener, upstream of the Kafka proxy. */
  brokerProxied: number;
  /** Toxiproxy's proxy in front of the Mongo-protocol server. */
  mongo: number;
}

export function faultProxyPorts(base: number): FaultProxyPorts {
  return { api: base, kafka: base + 1, brokerProxied: base + 2, mongo: base + 3 };
}

export function toxiproxyBinary(ctx: StackContext): string {
  // GOBIN names the binary after its package folder, cmd/server.
  return path.join(ctx.cacheDir, `toxiproxy-${TOXIPROXY_VERSION}`, 'server');
}

/** Builds the pinned release once; later calls find the binary and return. */
export async function installToxiproxy(ctx: StackContext): Promise<string> {
  const binary = toxiproxyBinary(ctx);
  if (fs.existsSync(binary)) return binary;
  try {
    runChecked('go', ['version'], { timeout: 30_000 });
  } catch (err) {
    throw new KeyflowError(
      'SERVICE_INSTALL_FAILED',
      `\`go\` is not usable: the network fault scenarios build Toxiproxy ${TOXIPROXY_VERSION} with go install; install Go 1.22+`,
      { retriable: false, cause: err },
    );
  }
  ctx.progress(`building Toxiproxy v${TOXIPROXY_VERSION} with go install (first time only)...`);
  // Into a scratch folder first, so an interrupted build never leaves a binary that looks complete.
  const scratch = `${path.dirname(binary)}.partial`;
  fs.rmSync(scratch, { recursive: true, force: true });
  await runWatched(
    'go',
    ['install', '-trimpath', `${MODULE}@v${TOXIPROXY_VERSION}`],
    { timeout: BUILD_TIMEOUT_MS, env: { ...process.env, GOBIN: scratch, CGO_ENABLED: '0' } },
    {
      progress: ctx.progress,
      everyMs: 10_000,
      report: (ms) => `still building Toxiproxy (${Math.round(ms / 1000)}s)`,
    },
  );
  if (!fs.existsSync(path.join(scratch, 'server'))) {
    throw new KeyflowError('SERVICE_INSTALL_FAILED', `go install left no Toxiproxy binary in ${scratch}`, {
      retriable: false,
    });
  }
  fs.rmSync(path.dirname(binary), { recursive: true, force: true });
  fs.renameSync(scratch, path.dirname(binary));
  ctx.progress(`Toxiproxy ${TOXIPROXY_VERSION} ready (${binary})`);
  return binary;
}

export type ToxicStream = 'upstream' | 'downstream';

export interface Toxic {
  name: string;
  type: 'latency' | 'timeout' | 'bandwidth' | 'reset_peer' | 'slow_close' | 'slicer' | 'limit_data';
  stream: ToxicStream;
  attributes: Record<string, number>;
}

/** A running Toxiproxy of ours; `close` stops it and is safe to call twice. */
export class Toxiproxy {
  private closed = false;

  constructor(
    private readonly ctx: StackContext,
    readonly pid: number,
    readonly apiPort: number,
  ) {}

  private async call(method: string, route: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`http://127.0.0.1:${this.apiPort}${route}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) {
      throw new KeyflowError(
        'FAULT_PROXY_FAILED',
        `Toxiproxy refused ${method} ${route}: ${res.status} ${text.slice(0, 200)}`,
      );
    }
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  /** A proxy from 127.0.0.1:`listen` to 127.0.0.1:`upstream`, replacing one of the same name. */
  async proxy(name: string, listen: number, upstream: number): Promise<void> {
    const existing = (await this.call('GET', '/proxies')) as Record<string, unknown>;
    if (name in existing) await this.call('DELETE', `/proxies/${name}`);
    await this.call('POST', '/proxies', {
      name,
      listen: `127.0.0.1:${listen}`,
      upstream: `127.0.0.1:${upstream}`,
      enabled: true,
    });
  }

  async addToxic(proxy: string, toxic: Toxic): Promise<void> {
    await this.call('POST', `/proxies/${proxy}/toxics`, { ...toxic, toxicity: 1 });
  }

  async removeToxic(proxy: string, name: string): Promise<void> {
    await this.call('DELETE', `/proxies/${proxy}/toxics/${name}`);
  }

  async toxics(proxy: string): Promise<Toxic[]> {
    return (await this.call('GET', `/proxies/${proxy}/toxics`)) as Toxic[];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await stopGroup(this.pid);
    fs.rmSync(pidFile(this.ctx, 'toxiproxy'), { force: true });
  }
}

async function stopGroup(pid: number): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + 10_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) signal('SIGKILL');
    await sleep(100);
  }
}

async function answers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/version`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Installs if needed and starts Toxiproxy's API on `apiPort`; a copy a crashed earlier run left behind
 * (found by our pid file) is stopped first, a port held by anything else is refused.
 */
export async function startToxiproxy(ctx: StackContext, apiPort: number): Promise<Toxiproxy> {
  const binary = await installToxiproxy(ctx);
  const file = pidFile(ctx, 'toxiproxy');
  const stale = fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8').trim()) : NaN;
  if (Number.isInteger(stale) && stale > 0 && isAlive(stale)) await stopGroup(stale);
  if (await portOpen(apiPort)) {
    throw new KeyflowError(
      'SERVICE_PORT_BUSY',
      `port ${apiPort} for Toxiproxy is taken by a process we did not start; set KEYFLOW_FAULT_PROXY_PORT to a free range of four ports`,
    );
  }
  const pid = spawnDetached(ctx, 'toxiproxy', binary, ['-host', '127.0.0.1', '-port', String(apiPort)]);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${pid}\n`);
  const proxy = new Toxiproxy(ctx, pid, apiPort);
  const deadline = Date.now() + 15_000;
  while (!(await answers(apiPort))) {
    if (!isAlive(pid) || Date.now() > deadline) {
      await proxy.close();
      throw new KeyflowError(
        'SERVICE_START_FAILED',
        `Toxiproxy did not answer on 127.0.0.1:${apiPort}; last lines of ${logFile(ctx, 'toxiproxy')}:\n${tail(logFile(ctx, 'toxiproxy'))}`,
      );
    }
    await sleep(100);
  }
  return proxy;
}
