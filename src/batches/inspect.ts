// The ingest stage's pluggable processing, and the shipped handler: read the origin (file:// or
// http(s)://), make sure it is an image we can identify, and report size, media type and dimensions.
// Both kinds are fenced (see README "Asset origins"): file:// only under a configured root, http(s) only
// to vetted public addresses, without redirects, within a size cap and a time limit.
import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { open, realpath } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyflowError } from '../errors';
import { hostAllowed, parseCidr, refusedAddress, type Cidr } from './address-policy';
import { redactOrigin } from './redact';
import { identifyImage, type ImageMediaType } from './image-header';

export interface AssetRef {
  customerId: string;
  assetId: string;
  origin: string;
}

export interface AssetFacts {
  size: number;
  mediaType: ImageMediaType;
  width: number;
  height: number;
}

/**
 * Processes one asset. Throw ASSET_INVALID (not retriable) for an asset that can never succeed as given;
 * anything retriable is retried a few times before it is recorded as the asset's error.
 */
export type AssetHandler = (asset: AssetRef) => Promise<AssetFacts>;

export interface InspectOptions {
  /** Give up on an http(s) origin after this long, connect to last byte (default 10 s). */
  timeoutMs?: number;
  /** Refuse origins larger than this (default 32 MiB). */
  maxBytes?: number;
  /** file:// origins are refused unless this is set; then only files under it, after resolving links. */
  fileRoot?: string;
  /** When non-empty, http(s) origins must name one of these hosts (`*.example.com` for subdomains). */
  allowHosts?: readonly string[];
  /** Address ranges let through although private or loopback (an on-premises asset store); CIDR text. */
  allowAddresses?: readonly string[];
}

/** The options with their defaults filled in. */
interface Resolved {
  timeoutMs: number;
  maxBytes: number;
  fileRoot?: string;
  allowHosts: readonly string[];
  allowAddresses: Cidr[];
}

function invalid(origin: string, why: string, cause?: unknown): KeyflowError {
  return new KeyflowError('ASSET_INVALID', `origin ${redactOrigin(origin)} ${why}`, {
    retriable: false,
    cause,
  });
}

/** A policy refusal names our rule only, never what the target said, so it cannot be used as a probe. */
function refused(origin: string, rule: string): KeyflowError {
  return new KeyflowError('ASSET_REFUSED', `origin ${redactOrigin(origin)} refused by policy (${rule})`, {
    retriable: false,
  });
}

function fetchFailed(origin: string, why: string): KeyflowError {
  return new KeyflowError('ASSET_FETCH_FAILED', `origin ${redactOrigin(origin)} ${why}`, { retriable: true });
}

const under = (root: string, p: string) =>
  p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

async function readFileOrigin(origin: string, url: URL, opts: Resolved): Promise<Buffer> {
  if (opts.fileRoot === undefined) throw refused(origin, 'file origins are not enabled');
  let file: string;
  try {
    file = fileURLToPath(url);
  } catch {
    throw invalid(origin, 'is not a usable file URL');
  }
  // Checked before and after resolving links: nothing outside the root is even looked at.
  const lexicalRoot = path.resolve(opts.fileRoot);
  if (!under(lexicalRoot, path.resolve(file))) throw refused(origin, 'outside the allowed file root');
  let handle;
  try {
    const root = await realpath(lexicalRoot);
    const real = await realpath(file);
    if (!under(root, real)) throw refused(origin, 'outside the allowed file root');
    handle = await open(real, 'r');
  } catch (err) {
    if (err instanceof KeyflowError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw invalid(origin, 'does not exist');
    throw invalid(origin, `cannot be read (${code ?? 'unknown error'})`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw invalid(origin, 'is not a regular file');
    if (stat.size > opts.maxBytes)
      throw invalid(origin, `is ${stat.size} bytes; the limit is ${opts.maxBytes}`);
    const buf = Buffer.alloc(stat.size);
    const { bytesRead } = await handle.read(buf, 0, stat.size, 0);
    return buf.subarray(0, bytesRead);
  } catch (err) {
    if (err instanceof KeyflowError) throw err;
    throw invalid(origin, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'unknown error'})`);
  } finally {
    await handle.close();
  }
}

/**
 * Resolves the host and vets every address it resolves to; the fetch then connects to the vetted address
 * only (pinned), so a DNS answer that changes between this check and the connect cannot slip through.
 */
async function vetHost(origin: string, url: URL, opts: Resolved): Promise<LookupAddress> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!hostAllowed(host, opts.allowHosts)) throw refused(origin, 'host is not on the allow-list');
  let addresses: LookupAddress[];
  try {
    addresses = await lookup(host, { all: true, verbatim: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND') throw invalid(origin, 'names a host that does not exist');
    throw fetchFailed(origin, `could not be resolved (${code ?? 'unknown error'})`);
  }
  if (addresses.length === 0) throw invalid(origin, 'names a host without addresses');
  for (const a of addresses) {
    const why = refusedAddress(a.address, opts.allowAddresses);
    if (why) throw refused(origin, `${why} address`);
  }
  return addresses[0]!;
}

function request(url: URL, pinned: LookupAddress, signal: AbortSignal): Promise<IncomingMessage> {
  const pin: LookupFunction = (_host, options, cb) => {
    if (options.all) cb(null, [pinned]);
    else cb(null, pinned.address, pinned.family);
  };
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    // No agent: a kept-alive socket to a host must not be reused for a later, differently vetted fetch.
    const req = send(url, { method: 'GET', signal, lookup: pin, agent: false }, resolve);
    req.on('error', reject);
    req.end();
  });
}

async function readHttpOrigin(origin: string, url: URL, opts: Resolved): Promise<Buffer> {
  const pinned = await vetHost(origin, url, opts);
  const signal = AbortSignal.timeout(opts.timeoutMs);
  const broke = (err: unknown) =>
    signal.aborted
      ? fetchFailed(origin, `did not finish within ${opts.timeoutMs} ms`)
      : fetchFailed(origin, `did not answer (${(err as NodeJS.ErrnoException).code ?? 'connection failed'})`);
  let res: IncomingMessage;
  try {
    res = await request(url, pinned, signal);
  } catch (err) {
    throw broke(err);
  }
  const status = res.statusCode ?? 0;
  try {
    if (status >= 300 && status < 400) throw refused(origin, 'redirects are not followed');
    if (status >= 500 || status === 429) throw fetchFailed(origin, `answered HTTP ${status}`);
    if (status < 200 || status >= 300) throw invalid(origin, `answered HTTP ${status}`);
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > opts.maxBytes) {
      throw invalid(origin, `is ${declared} bytes; the limit is ${opts.maxBytes}`);
    }
    // Read chunk by chunk so a body without (or lying about) its length still stops at the cap.
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      total += chunk.byteLength;
      if (total > opts.maxBytes) throw invalid(origin, `is larger than the limit of ${opts.maxBytes} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  } catch (err) {
    if (err instanceof KeyflowError) throw err;
    throw broke(err);
  } finally {
    res.destroy();
  }
}

/** The shipped handler: reads the whole origin (up to the cap), identifies it, reports its facts. */
export function inspectOrigin(options: InspectOptions = {}): AssetHandler {
  const opts: Resolved = {
    timeoutMs: options.timeoutMs ?? 10_000,
    maxBytes: options.maxBytes ?? 32 * 1024 * 1024,
    fileRoot: options.fileRoot,
    allowHosts: options.allowHosts ?? [],
    allowAddresses: (options.allowAddresses ?? []).map(parseCidr),
  };
  return async ({ origin }) => {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw invalid(origin, 'is not a URL');
    }
    let bytes: Buffer;
    if (url.protocol === 'file:') bytes = await readFileOrigin(origin, url, opts);
    else if (url.protocol === 'http:' || url.protocol === 'https:')
      bytes = await readHttpOrigin(origin, url, opts);
    else throw invalid(origin, `has scheme ${url.protocol}; use file:, http: or https:`);
    if (bytes.length === 0) throw invalid(origin, 'is empty');
    const header = identifyImage(bytes);
    if (!header) throw invalid(origin, 'is not an image this service can identify (PNG, JPEG, GIF or WebP)');
    return { size: bytes.length, ...header };
  };
}
