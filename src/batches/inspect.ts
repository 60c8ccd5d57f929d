// The ingest stage's pluggable processing, and the shipped handler: read the origin (file:// or
// http(s)://), make sure it is an image we can identify, and report size, media type and dimensions.
import { open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyflowError } from '../errors';
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
  /** Give up on an http(s) origin after this long (default 10 s). */
  timeoutMs?: number;
  /** Refuse origins larger than this (default 32 MiB). */
  maxBytes?: number;
  /** When set, file:// origins must lie under this directory, so an API caller cannot probe the host. */
  fileRoot?: string;
}

/** The options with their defaults filled in. */
type Resolved = InspectOptions & { timeoutMs: number; maxBytes: number };

function invalid(origin: string, why: string, cause?: unknown): KeyflowError {
  return new KeyflowError('ASSET_INVALID', `origin ${origin} ${why}`, { retriable: false, cause });
}

async function readFileOrigin(origin: string, url: URL, opts: Resolved): Promise<Buffer> {
  let file: string;
  try {
    file = fileURLToPath(url);
  } catch (err) {
    throw invalid(origin, 'is not a usable file URL', err);
  }
  let handle;
  try {
    const real = await realpath(file);
    if (opts.fileRoot !== undefined) {
      const root = await realpath(opts.fileRoot);
      if (real !== root && !real.startsWith(root + path.sep))
        throw invalid(origin, 'is outside the allowed file root');
    }
    handle = await open(real, 'r');
  } catch (err) {
    if (err instanceof KeyflowError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw invalid(origin, 'does not exist', err);
    throw invalid(origin, `cannot be read (${code ?? (err as Error).message})`, err);
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
    throw invalid(origin, `cannot be read (${(err as Error).message})`, err);
  } finally {
    await handle.close();
  }
}

async function readHttpOrigin(origin: string, opts: Resolved): Promise<Buffer> {
  let res: Response;
  try {
    res = await fetch(origin, { signal: AbortSignal.timeout(opts.timeoutMs), redirect: 'follow' });
  } catch (err) {
    throw new KeyflowError(
      'ASSET_FETCH_FAILED',
      `origin ${origin} did not answer: ${(err as Error).message}`,
      {
        retriable: true,
        cause: err,
      },
    );
  }
  if (res.status >= 500 || res.status === 429) {
    await res.body?.cancel();
    throw new KeyflowError('ASSET_FETCH_FAILED', `origin ${origin} answered ${res.status}`, {
      retriable: true,
    });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw invalid(origin, `answered HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > opts.maxBytes) {
    await res.body?.cancel();
    throw invalid(origin, `is ${declared} bytes; the limit is ${opts.maxBytes}`);
  }
  // Read chunk by chunk so a body without (or lying about) its length still stops at the cap.
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = res.body?.getReader();
  try {
    for (;;) {
      const next = await reader?.read();
      if (!next || next.done) break;
      total += next.value.byteLength;
      if (total > opts.maxBytes) {
        await reader?.cancel();
        throw invalid(origin, `is larger than the limit of ${opts.maxBytes} bytes`);
      }
      chunks.push(Buffer.from(next.value));
    }
  } catch (err) {
    if (err instanceof KeyflowError) throw err;
    throw new KeyflowError('ASSET_FETCH_FAILED', `origin ${origin} broke off: ${(err as Error).message}`, {
      retriable: true,
      cause: err,
    });
  }
  return Buffer.concat(chunks);
}

/** The shipped handler: reads the whole origin (up to the cap), identifies it, reports its facts. */
export function inspectOrigin(options: InspectOptions = {}): AssetHandler {
  const opts: Resolved = { timeoutMs: 10_000, maxBytes: 32 * 1024 * 1024, ...options };
  return async ({ origin }) => {
    let url: URL;
    try {
      url = new URL(origin);
    } catch (err) {
      throw invalid(origin, 'is not a URL', err);
    }
    let bytes: Buffer;
    if (url.protocol === 'file:') bytes = await readFileOrigin(origin, url, opts);
    else if (url.protocol === 'http:' || url.protocol === 'https:')
      bytes = await readHttpOrigin(origin, opts);
    else throw invalid(origin, `has scheme ${url.protocol}; use file:, http: or https:`);
    if (bytes.length === 0) throw invalid(origin, 'is empty');
    const header = identifyImage(bytes);
    if (!header) throw invalid(origin, 'is not an image this service can identify (PNG, JPEG, GIF or WebP)');
    return { size: bytes.length, ...header };
  };
}
