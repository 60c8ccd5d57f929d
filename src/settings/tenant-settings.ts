// Tenant customization and integration settings, folded from the compacted `tenant-settings` topic into a
// Map that handlers read synchronously. A bad update is refused and the tenant keeps its previous settings.
// The record under key `*` carries runtime switches for the whole process (e.g. entityLocking).
import { z } from 'zod';
import { KeyflowError } from '../errors';
import { compactTopic } from '../topology/define';
import type { TopicSpec } from '../topology/types';
import { EVENTS, type Instrumentation } from '../instrumentation';
import type { Logger } from '../logger';

export const TENANT_SETTINGS_TOPIC = 'tenant-settings';
/** The key of the record holding runtime switches instead of one tenant's settings. */
export const RUNTIME_KEY = '*';

/** The value of a `tenant-settings` record; `settings` is JSON text validated by the cache's schema. */
export const tenantSettingsValue = z.object({ tenantId: z.string().min(1), settings: z.string() });
export type TenantSettingsValue = z.infer<typeof tenantSettingsValue>;

/**
 * The settings topic: compacted so a fresh instance rebuilds every tenant's latest settings by reading
 * it from the start; one partition, since every instance reads all of it anyway.
 */
export function tenantSettingsTopic(name: string = TENANT_SETTINGS_TOPIC): TopicSpec<TenantSettingsValue> {
  return compactTopic(name, {
    partitions: 1,
    key: 'tenantId',
    value: {
      avro: {
        type: 'record',
        name: 'TenantSettings',
        namespace: 'keyflow.engine',
        fields: [
          { name: 'tenantId', type: 'string' },
          { name: 'settings', type: 'string', doc: 'JSON text' },
        ],
      },
      zod: tenantSettingsValue,
    },
  });
}

export const runtimeSwitches = z.strictObject({ entityLocking: z.enum(['off', 'lease']).optional() });
export type EntityLocking = 'off' | 'lease';
export interface RuntimeSwitches {
  entityLocking: EntityLocking;
}

/** Field names whose values are never logged nor put in a rejection reason. */
export const SECRET_FIELD = /pass|pwd|token|secret|api[-_]?key|credential|private[-_]?key|authorization/i;

/** A copy of `value` with every secret-named field's value replaced, for logs. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_FIELD.test(k) ? '[redacted]' : redactSecrets(v)]),
    );
  }
  return value;
}

/** Every string (or number) held under a secret-named field, so free text can be scrubbed of them. */
function secretValues(value: unknown, out: string[] = [], underSecret = false): string[] {
  if (Array.isArray(value)) for (const v of value) secretValues(v, out, underSecret);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) secretValues(v, out, underSecret || SECRET_FIELD.test(k));
  } else if (
    underSecret &&
    (typeof value === 'string' || typeof value === 'number') &&
    String(value).length > 0
  ) {
    out.push(String(value));
  }
  return out;
}

function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[redacted]');
  return out;
}

export interface TenantSettingsOptions<Raw, T> {
  /** Validates one tenant's parsed settings JSON. */
  schema: z.ZodType<Raw>;
  /** Turns valid settings into what handlers read (e.g. precompiled lookups); a throw rejects the update. */
  preprocess?: (raw: Raw, tenantId: string) => T;
  /** Runtime switches before (or without) a `*` record; usually from config (KEYFLOW_ENTITY_LOCKING). */
  defaults: RuntimeSwitches;
  log: Logger;
  instrumentation?: Instrumentation;
}

export type ApplyResult = 'applied' | 'deleted' | 'rejected';

export class TenantSettingsCache<T, Raw = T> {
  private readonly tenants = new Map<string, T>();
  private switches: RuntimeSwitches;

  constructor(private readonly opts: TenantSettingsOptions<Raw, T>) {
    this.switches = { ...opts.defaults };
  }

  /** The tenant's current settings, or undefined when it has none. Synchronous: read in handlers. */
  get(tenantId: string): T | undefined {
    return this.tenants.get(tenantId);
  }

  /** Settings for a tenant that must have them; SETTINGS_INVALID when it has none. */
  require(tenantId: string): T {
    const s = this.tenants.get(tenantId);
    if (s === undefined) {
      throw new KeyflowError('SETTINGS_INVALID', `tenant ${tenantId} has no settings`, {
        details: { tenantId },
      });
    }
    return s;
  }

  runtime(): Readonly<RuntimeSwitches> {
    return this.switches;
  }

  get size(): number {
    return this.tenants.size;
  }

  /**
   * Folds one record of the topic. `null` is a tombstone: the tenant's settings (or the runtime
   * switches, for `*`) go back to nothing (the defaults). Anything invalid is refused with a logged
   * reason and the previous settings stay in force.
   */
  apply(key: string, value: unknown): ApplyResult {
    if (value === null) {
      if (key === RUNTIME_KEY) this.switches = { ...this.opts.defaults };
      else this.tenants.delete(key);
      this.opts.log.info({ tenantId: key }, 'tenant settings deleted');
      this.opts.instrumentation?.emit(EVENTS.SETTINGS_APPLIED, { key });
      return 'deleted';
    }
    const shape = tenantSettingsValue.safeParse(value);
    if (!shape.success)
      return this.reject(key, `record value is not {tenantId, settings}: ${issues(shape.error)}`, []);
    if (shape.data.tenantId !== key) {
      return this.reject(key, `record key ${key} differs from its tenantId ${shape.data.tenantId}`, []);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(shape.data.settings);
    } catch {
      // JSON.parse's message quotes the text around the error, which may be a secret: say only that it failed.
      return this.reject(key, 'settings is not valid JSON', []);
    }
    const secrets = secretValues(parsed);
    return key === RUNTIME_KEY ? this.applyRuntime(parsed, secrets) : this.applyTenant(key, parsed, secrets);
  }

  private applyRuntime(parsed: unknown, secrets: string[]): ApplyResult {
    const res = runtimeSwitches.safeParse(parsed);
    if (!res.success) return this.reject(RUNTIME_KEY, issues(res.error), secrets);
    this.switches = { ...this.opts.defaults, ...res.data } as RuntimeSwitches;
    this.opts.log.info({ runtime: this.switches }, 'runtime switches applied');
    this.opts.instrumentation?.emit(EVENTS.SETTINGS_APPLIED, { key: RUNTIME_KEY });
    return 'applied';
  }

  private applyTenant(tenantId: string, parsed: unknown, secrets: string[]): ApplyResult {
    const res = this.opts.schema.safeParse(parsed);
    if (!res.success) return this.reject(tenantId, issues(res.error), secrets);
    let ready: T;
    try {
      ready = this.opts.preprocess ? this.opts.preprocess(res.data, tenantId) : (res.data as unknown as T);
    } catch (err) {
      return this.reject(tenantId, `preprocess failed: ${(err as Error)?.message ?? String(err)}`, secrets);
    }
    this.tenants.set(tenantId, ready);
    this.opts.log.info({ tenantId, settings: redactSecrets(parsed) }, 'tenant settings applied');
    this.opts.instrumentation?.emit(EVENTS.SETTINGS_APPLIED, { key: tenantId });
    return 'applied';
  }

  private reject(key: string, why: string, secrets: string[]): ApplyResult {
    const reason = scrub(why, secrets);
    this.opts.log.warn(
      { tenantId: key, reason, code: 'SETTINGS_INVALID' },
      'tenant settings update rejected; previous settings stay in force',
    );
    this.opts.instrumentation?.emit(EVENTS.SETTINGS_REJECTED, { key, reason });
    return 'rejected';
  }
}

/** zod issues as `path: message; ...` — paths and rules only, never the offending values. */
function issues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}
