// The registry codec: registers each topic's Avro schema (BACKWARD) and turns values into Confluent
// wire-format bytes and back, with the topic's zod schema checked on both sides. Registry client
// types stay inside src/schemas/.
//
// Avro logical types: avsc is never given logical-type implementations here, so a
// `{ type: 'long', logicalType: 'timestamp-millis' }` field is read and written as its underlying
// long: an epoch-millisecond number, never a Date. Zod schemas therefore declare such fields as numbers.
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import type { z } from 'zod';
import { KeyflowError } from '../errors';
import type { TopicSpec } from '../topology/types';

const MAGIC_BYTE = 0;
/** Magic byte plus the 4-byte big-endian schema id. */
const WIRE_HEADER_LENGTH = 5;
const REGISTRY_CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

export interface RegistryAuth {
  username: string;
  password: string;
}

export interface RegistryCodecOptions {
  url: string;
  /** `user:password` (as in SCHEMA_REGISTRY_AUTH) or the two parts. */
  auth?: string | RegistryAuth;
}

export interface Decoded<T = unknown> {
  value: T;
  schemaId: number;
}

export function subjectOf(topic: string): string {
  return `${topic}-value`;
}

/** Reads the Confluent wire-format header; DECODE_FAILED when the bytes cannot be in that format. */
export function readWireHeader(bytes: Uint8Array): { schemaId: number } {
  if (bytes.length < WIRE_HEADER_LENGTH) {
    throw new KeyflowError(
      'DECODE_FAILED',
      `message has ${bytes.length} bytes; the Confluent wire format needs at least ${WIRE_HEADER_LENGTH} (magic byte 0 and a 4-byte schema id)`,
      { retriable: false },
    );
  }
  if (bytes[0] !== MAGIC_BYTE) {
    throw new KeyflowError(
      'DECODE_FAILED',
      `message starts with byte 0x${bytes[0]!.toString(16).padStart(2, '0')}, not the magic byte 0x00: it is not in the Confluent wire format`,
      { retriable: false },
    );
  }
  return { schemaId: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readInt32BE(1) };
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(the whole value)';
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}

/** Validates with zod; VALIDATION_FAILED names the field path of the first issue (all are in details). */
export function validateValue<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
  const first = issues[0];
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  throw new KeyflowError(
    'VALIDATION_FAILED',
    `${what} is invalid at ${first?.path}: ${first?.message}${more}`,
    {
      retriable: false,
      details: { issues },
    },
  );
}

/**
 * The registry's own explanation out of a client error. The client prefixes its client id
 * ("<id> - <message>"); a message of the form "Error, status N: ..." means no registry answered
 * with a body of its own (mappersmith reports a refused connection or a timeout as status 400).
 */
function registryReason(message: string): { reason: string; answered: boolean } {
  // Apicurio prefixes its reasons with the Java exception class; the class name tells a reader nothing.
  const reason = message.replace(/^[^ ]* - /, '').replace(/^(?:[a-z]\w*\.)+\w*Exception: /, '');
  return { reason, answered: !/^Error, status \d+/.test(reason) };
}

/** Classifies a failed registry call: 404 → SCHEMA_UNKNOWN, 409 → SCHEMA_INCOMPATIBLE, no answer → UNREACHABLE. */
export function registryFailure(err: unknown, action: string): KeyflowError {
  if (err instanceof KeyflowError) return err;
  const e = err as { status?: unknown; message?: unknown };
  const status = typeof e?.status === 'number' ? e.status : undefined;
  const { reason, answered } = registryReason(typeof e?.message === 'string' ? e.message : String(err));
  if (status === undefined || !answered || status >= 500 || status === 408 || status === 429) {
    return new KeyflowError(
      'UNREACHABLE',
      `schema registry did not answer while trying to ${action}: ${reason}`,
      {
        retriable: true,
        cause: err,
      },
    );
  }
  if (status === 401 || status === 403) {
    return new KeyflowError(
      'CONFIG_INVALID',
      `schema registry refused the credentials while trying to ${action} (HTTP ${status}); check SCHEMA_REGISTRY_AUTH`,
      { retriable: false, cause: err },
    );
  }
  if (status === 404) {
    return new KeyflowError(
      'SCHEMA_UNKNOWN',
      `schema registry does not know what was asked to ${action}: ${reason}`,
      {
        retriable: false,
        cause: err,
      },
    );
  }
  if (status === 409 || status === 422) {
    return new KeyflowError('SCHEMA_INCOMPATIBLE', `schema registry refused to ${action}: ${reason}`, {
      retriable: false,
      cause: err,
    });
  }
  return new KeyflowError('UNREACHABLE', `schema registry failed to ${action} (HTTP ${status}): ${reason}`, {
    retriable: false,
    cause: err,
  });
}

/** The registry's `message` out of an error body; a body that is not JSON is shown as it came. */
function bodyMessage(body: string): string {
  try {
    const message = (JSON.parse(body) as { message?: unknown }).message;
    return typeof message === 'string' ? message : body;
  } catch {
    return body;
  }
}

function parseAuth(auth: RegistryCodecOptions['auth']): RegistryAuth | undefined {
  if (auth === undefined || typeof auth !== 'string') return auth;
  const colon = auth.indexOf(':');
  if (colon <= 0) {
    throw new KeyflowError('CONFIG_INVALID', 'schema registry auth must be user:password', {
      retriable: false,
    });
  }
  return { username: auth.slice(0, colon), password: auth.slice(colon + 1) };
}

interface Registered {
  spec: TopicSpec;
  schemaId: number;
}

export class RegistryCodec {
  private readonly registry: SchemaRegistry;
  private readonly url: string;
  private readonly auth: RegistryAuth | undefined;
  private readonly topics = new Map<string, Registered>();
  /**
   * Per topic and writer schema id, how to read an older (or newer) writer's payload as the topic's
   * schema. The registry client built the reader type and the resolver again for every message (about
   * a millisecond each): a backlog written with another version kept the event loop busy for seconds,
   * heartbeats lapsed, and the platformatic member yielded its deliveries for good (registry-down).
   */
  private readonly readers = new Map<string, (payload: Buffer) => unknown>();

  constructor(opts: RegistryCodecOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.auth = parseAuth(opts.auth);
    const auth = this.auth ? { username: this.auth.username, password: this.auth.password } : undefined;
    this.registry = new SchemaRegistry({ host: this.url, clientId: 'keyflow', ...(auth ? { auth } : {}) });
  }

  /**
   * For every topic with a value schema: sets its subject to BACKWARD (consumers on the new schema
   * can read everything already in the topic), then registers the schema and remembers its id.
   * Returns topic → schema id. Topics without a value schema (dead letters) are skipped.
   */
  async registerAll(topics: TopicSpec[]): Promise<Map<string, number>> {
    const ids = new Map<string, number>();
    for (const spec of topics) {
      if (!spec.value) continue;
      const subject = subjectOf(spec.name);
      await this.setCompatibility(subject, COMPATIBILITY.BACKWARD);
      let id: number;
      try {
        ({ id } = await this.registry.register(
          { type: SchemaType.AVRO, schema: JSON.stringify(spec.value.avro) },
          { subject, compatibility: COMPATIBILITY.BACKWARD },
        ));
      } catch (err) {
        throw this.registerFailure(err, spec.name, subject);
      }
      this.topics.set(spec.name, { spec, schemaId: id });
      ids.set(spec.name, id);
    }
    return ids;
  }

  /** The id the topic's current schema was registered under. */
  schemaId(topic: string): number {
    return this.entry(topic).schemaId;
  }

  /** Validates with the topic's zod schema, then encodes in the Confluent wire format. */
  async encode<T>(topic: string, value: T): Promise<Buffer> {
    const { spec, schemaId } = this.entry(topic);
    const valid = validateValue(spec.value!.zod, value, `value for topic "${topic}"`);
    try {
      return await this.registry.encode(schemaId, valid);
    } catch (err) {
      const paths = (err as { paths?: unknown }).paths;
      if (Array.isArray(paths)) {
        // zod accepted it but Avro did not (e.g. an int out of range): the two schemas disagree.
        const at = paths.map((p: unknown) => (Array.isArray(p) ? formatPath(p as PropertyKey[]) : String(p)));
        throw new KeyflowError(
          'VALIDATION_FAILED',
          `value for topic "${topic}" does not fit its Avro schema at ${at.join(', ') || '(the whole value)'}; make its zod schema as strict as the Avro one`,
          { retriable: false, cause: err, details: { paths: at } },
        );
      }
      throw registryFailure(err, `encode a value for topic "${topic}" with schema id ${schemaId}`);
    }
  }

  /**
   * Decodes Confluent wire-format bytes read from `topic`. Bytes written with an older schema are
   * resolved into the topic's current schema (BACKWARD makes that possible), so the zod schema sees
   * the current shape with defaults filled in.
   */
  async decode<T = unknown>(topic: string, bytes: Buffer): Promise<Decoded<T>> {
    const { spec, schemaId: currentId } = this.entry(topic);
    const { schemaId } = readWireHeader(bytes);
    try {
      await this.registry.getSchema(schemaId);
    } catch (err) {
      const failure = registryFailure(err, `look up schema id ${schemaId} (message on topic "${topic}")`);
      if (failure.code === 'SCHEMA_UNKNOWN') {
        throw new KeyflowError(
          'SCHEMA_UNKNOWN',
          `message on topic "${topic}" names schema id ${schemaId}, which the schema registry does not know; it was written against another registry or the schema was deleted`,
          { retriable: false, cause: err },
        );
      }
      throw failure;
    }
    let decoded: unknown;
    try {
      decoded =
        schemaId === currentId
          ? await this.registry.decode(bytes)
          : (await this.readerFor(topic, spec, schemaId))(bytes.subarray(WIRE_HEADER_LENGTH));
    } catch (err) {
      if (typeof (err as { status?: unknown }).status === 'number') {
        throw registryFailure(err, `look up schema id ${schemaId}`);
      }
      throw new KeyflowError(
        'DECODE_FAILED',
        `message on topic "${topic}" with schema id ${schemaId} is not decodable: ${(err as Error).message ?? String(err)}`,
        { retriable: false, cause: err },
      );
    }
    const value = validateValue(spec.value!.zod, decoded, `decoded value on topic "${topic}"`) as T;
    return { value, schemaId };
  }

  /** The topic's reader for payloads written with `schemaId` (a resolver, once per id). */
  private async readerFor(
    topic: string,
    spec: TopicSpec,
    schemaId: number,
  ): Promise<(payload: Buffer) => unknown> {
    const key = `${topic}\u0000${schemaId}`;
    const known = this.readers.get(key);
    if (known) return known;
    const writer = (await this.registry.getSchema(schemaId)) as unknown as avro.Type;
    const reader = avro.Type.forSchema(spec.value!.avro as avro.Schema);
    const read = reader.equals(writer)
      ? (payload: Buffer) => reader.fromBuffer(payload)
      : (
          (resolver) => (payload: Buffer) =>
            reader.fromBuffer(payload, resolver)
        )(reader.createResolver(writer));
    this.readers.set(key, read);
    return read;
  }

  private entry(topic: string): Registered {
    const found = this.topics.get(topic);
    if (!found) {
      throw new KeyflowError(
        'TOPOLOGY_INVALID',
        `topic "${topic}" has no registered value schema; declare its value schema and call registerAll() first`,
        { retriable: false },
      );
    }
    return found;
  }

  private registerFailure(err: unknown, topic: string, subject: string): KeyflowError {
    const name = (err as { name?: unknown }).name;
    if (name === 'ConfluentSchemaRegistryCompatibilityError') {
      return new KeyflowError('SCHEMA_INCOMPATIBLE', `subject "${subject}": ${(err as Error).message}`, {
        retriable: false,
        cause: err,
      });
    }
    if (typeof (err as { status?: unknown }).status !== 'number') {
      // Thrown before any request: avsc refused the declared Avro schema itself.
      return new KeyflowError(
        'TOPOLOGY_INVALID',
        `topic "${topic}" declares an invalid Avro schema: ${(err as Error).message ?? String(err)}`,
        { retriable: false, cause: err },
      );
    }
    const failure = registryFailure(
      err,
      `register the schema of topic "${topic}" under subject "${subject}"`,
    );
    if (failure.code !== 'SCHEMA_INCOMPATIBLE') return failure;
    return new KeyflowError(
      'SCHEMA_INCOMPATIBLE',
      `subject "${subject}" refused the schema of topic "${topic}" as not BACKWARD-compatible with its latest version: ${registryReason((err as Error).message).reason}. ` +
        'Give new fields a default, or register the change under a new topic',
      { retriable: false, cause: err },
    );
  }

  /** PUT /config/<subject>: the registry client only sets it on a subject's first registration. */
  private async setCompatibility(subject: string, level: COMPATIBILITY): Promise<void> {
    const headers: Record<string, string> = {
      'content-type': REGISTRY_CONTENT_TYPE,
      accept: REGISTRY_CONTENT_TYPE,
    };
    if (this.auth) {
      headers.authorization = `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
    }
    const action = `set compatibility ${level} on subject "${subject}"`;
    let res: Response;
    try {
      res = await fetch(`${this.url}/config/${encodeURIComponent(subject)}`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ compatibility: level }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      throw new KeyflowError(
        'UNREACHABLE',
        `schema registry at ${this.url} did not answer while trying to ${action}: ${cause ?? (err as Error).message}`,
        {
          retriable: true,
          cause: err,
        },
      );
    }
    if (res.ok) return;
    const message = bodyMessage(await res.text().catch(() => ''));
    throw registryFailure({ status: res.status, message: message || `HTTP ${res.status}` }, action);
  }
}
