// `keyflow schemas check`: the project's Avro schemas against what the registry holds for each subject,
// under that subject's compatibility level (its own, else the registry's global one). The registry's
// verdict decides; avsc's resolution, the one the codec decodes with, names the fields that break.
import fs from 'node:fs';
import path from 'node:path';
import { KeyflowError } from '../errors';
import { registryFailure, subjectOf } from './codec';
import { breaksUnder, COMPATIBILITY_LEVELS, type Break, type CompatibilityLevel } from './compatibility';

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/** A topic's schema as the project declares it. */
export interface ProjectSchema {
  topic: string;
  avro: object;
}

export interface SubjectCheck {
  topic: string;
  subject: string;
  level: CompatibilityLevel;
  /** new: the registry has no version of the subject yet. */
  verdict: 'new' | 'unchanged' | 'compatible' | 'incompatible';
  /** The registered version compared against (the latest); undefined when new. */
  latest: number | undefined;
  breaks: Break[];
  /** The registry's own reason when it refused the schema. */
  registryReason: string | undefined;
}

export interface RegistryOptions {
  url: string;
  auth?: { username: string; password: string };
}

/** Reads `<dir>/<topic>.avsc` files: the way a producer's CI hands over schemas it means to publish. */
export function schemasFromDir(dir: string): ProjectSchema[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.avsc'));
  } catch (err) {
    throw new KeyflowError('USAGE', `cannot read the schema directory ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (names.length === 0) throw new KeyflowError('USAGE', `${dir} holds no <topic>.avsc files`);
  return names.sort().map((n) => {
    const file = path.join(dir, n);
    try {
      return {
        topic: n.slice(0, -'.avsc'.length),
        avro: JSON.parse(fs.readFileSync(file, 'utf8')) as object,
      };
    } catch (err) {
      throw new KeyflowError('USAGE', `${file} is not JSON: ${(err as Error).message}`, { cause: err });
    }
  });
}

class RegistryReader {
  private readonly url: string;
  private readonly headers: Record<string, string>;

  constructor(opts: RegistryOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.headers = { 'content-type': CONTENT_TYPE, accept: CONTENT_TYPE };
    if (opts.auth) {
      const { username, password } = opts.auth;
      this.headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    }
  }

  /** The JSON answer, or undefined on 404; any other failure is classified like the codec's. */
  private async call<T>(action: string, route: string, body?: unknown): Promise<T | undefined> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${route}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: this.headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new KeyflowError(
        'UNREACHABLE',
        `schema registry at ${this.url} did not answer while trying to ${action}: ${(err as Error).message}`,
        { retriable: true, cause: err },
      );
    }
    const text = await res.text();
    if (res.status === 404) return undefined;
    if (!res.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        // Not JSON: shown as it came.
      }
      throw registryFailure({ status: res.status, message }, action);
    }
    return JSON.parse(text) as T;
  }

  async level(subject: string): Promise<CompatibilityLevel> {
    type Config = { compatibilityLevel?: string; compatibility?: string };
    const own = await this.call<Config>(
      `read the compatibility of "${subject}"`,
      `/config/${encodeURIComponent(subject)}`,
    );
    const config = own ?? (await this.call<Config>('read the global compatibility', '/config'));
    const level = config?.compatibilityLevel ?? config?.compatibility ?? 'BACKWARD';
    if (!(COMPATIBILITY_LEVELS as readonly string[]).includes(level)) {
      throw new KeyflowError(
        'UNREACHABLE',
        `schema registry names an unknown compatibility level "${level}"`,
      );
    }
    return level as CompatibilityLevel;
  }

  async versions(subject: string): Promise<number[]> {
    const route = `/subjects/${encodeURIComponent(subject)}/versions`;
    return (await this.call<number[]>(`list the versions of "${subject}"`, route)) ?? [];
  }

  async schema(subject: string, version: number): Promise<object> {
    const route = `/subjects/${encodeURIComponent(subject)}/versions/${version}`;
    const found = await this.call<{ schema: string }>(`read version ${version} of "${subject}"`, route);
    if (!found) throw new KeyflowError('SCHEMA_UNKNOWN', `subject "${subject}" lost version ${version}`);
    return JSON.parse(found.schema) as object;
  }

  /** The registry's verdict on registering `schema` under the subject's level. */
  async compatible(subject: string, schema: object): Promise<{ ok: boolean; reason: string | undefined }> {
    const route = `/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest?verbose=true`;
    const answer = await this.call<{ is_compatible: boolean; reason?: string | null; messages?: string[] }>(
      `check a schema against "${subject}"`,
      route,
      { schemaType: 'AVRO', schema: JSON.stringify(schema) },
    );
    if (!answer) return { ok: true, reason: undefined };
    const reason = answer.reason ?? answer.messages?.join('; ') ?? undefined;
    return { ok: answer.is_compatible, reason: reason || undefined };
  }
}

function sameSchema(a: object, b: object): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Checks every schema against its subject; nothing is registered. */
export async function checkSchemas(
  registry: RegistryOptions,
  schemas: ProjectSchema[],
): Promise<SubjectCheck[]> {
  const reader = new RegistryReader(registry);
  const out: SubjectCheck[] = [];
  for (const { topic, avro } of schemas) {
    const subject = subjectOf(topic);
    const level = await reader.level(subject);
    const versions = (await reader.versions(subject)).sort((a, b) => a - b);
    const latest = versions.at(-1);
    if (latest === undefined) {
      out.push({ topic, subject, level, verdict: 'new', latest, breaks: [], registryReason: undefined });
      continue;
    }
    const registered = await Promise.all(
      versions.map(async (version) => ({ version, schema: await reader.schema(subject, version) })),
    );
    const breaks = breaksUnder(level, avro, registered);
    const answer = await reader.compatible(subject, avro);
    const verdict =
      !answer.ok || breaks.length > 0
        ? 'incompatible'
        : sameSchema(registered.at(-1)!.schema, avro)
          ? 'unchanged'
          : 'compatible';
    out.push({
      topic,
      subject,
      level,
      verdict,
      latest,
      breaks,
      registryReason: answer.ok ? undefined : answer.reason,
    });
  }
  return out;
}

function breakLine(b: Break): string {
  const field = b.field ? `field "${b.field}"` : 'the value';
  if (b.direction === 'backward') {
    const what =
      b.kind === 'missing'
        ? 'is new and has no default, so records already written (version ' + b.version + ') lack it'
        : b.kind === 'type'
          ? `changed type: ${b.problem}; records already written (version ${b.version}) no longer decode`
          : `cannot read records of version ${b.version}: ${b.problem}`;
    return `${field} ${what}`;
  }
  const what =
    b.kind === 'missing'
      ? `is gone, and version ${b.version} has no default for it, so readers still on version ${b.version} cannot read new records`
      : b.kind === 'type'
        ? `changed type: ${b.problem}; readers still on version ${b.version} cannot read new records`
        : `readers on version ${b.version} cannot read new records: ${b.problem}`;
  return `${field} ${what}`;
}

/**
 * One line per subject, then the breaks of an incompatible one and who reads the topic.
 * `readers(topic)` names the stages that consume it.
 */
export function renderChecks(checks: SubjectCheck[], readers: (topic: string) => string[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    const head = `${c.subject} (topic ${c.topic}, ${c.level})`;
    if (c.verdict === 'new') {
      lines.push(`new           ${head}: not in the registry; it becomes version 1 as it is`);
      continue;
    }
    if (c.verdict === 'unchanged') {
      lines.push(`unchanged     ${head}: the same as version ${c.latest}`);
      continue;
    }
    if (c.verdict === 'compatible') {
      const rule = c.level === 'NONE' ? '; the level is NONE, so the registry accepts any change' : '';
      lines.push(`compatible    ${head}: may follow version ${c.latest}${rule}`);
      continue;
    }
    lines.push(`INCOMPATIBLE  ${head}: the registry would refuse it after version ${c.latest}`);
    for (const b of c.breaks) lines.push(`  - ${breakLine(b)}`);
    if (c.breaks.length === 0 && c.registryReason) lines.push(`  - the registry says: ${c.registryReason}`);
    const who = readers(c.topic);
    lines.push(
      who.length > 0
        ? `  breaks: stage${who.length > 1 ? 's' : ''} ${who.join(', ')} (reading ${c.topic}), and any consumer outside Keyflow`
        : `  breaks: every consumer of ${c.topic} (no Keyflow stage reads it)`,
    );
    lines.push(
      '  fix: give a new field a default, keep a field’s type, or publish the change on a new topic',
    );
  }
  const count = (v: SubjectCheck['verdict']) => checks.filter((c) => c.verdict === v).length;
  lines.push(
    `schemas check: ${count('incompatible')} incompatible, ${count('compatible')} compatible, ` +
      `${count('unchanged')} unchanged, ${count('new')} new`,
  );
  return `${lines.join('\n')}\n`;
}
