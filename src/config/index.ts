// Loads and validates the settings once at start: the environment wins, then `.keyflow/services.env`
// written by `keyflow services up`. A bad value stops start-up with one line naming it and the fix.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { KeyflowError } from '../errors';
import { settings, type SettingName } from './schema';

export { settings } from './schema';

type Infer<K extends SettingName> = z.output<(typeof settings)[K]['schema']>;
export type Config = { [K in SettingName]: Infer<K> };

/** Settings some commands need and others (services, --help) do not. */
export const CONNECTION_SETTINGS = ['kafkaBrokers', 'schemaRegistryUrl', 'mongoUrl'] as const;

export class ConfigError extends KeyflowError {
  constructor(message: string) {
    super('CONFIG_INVALID', message, { retriable: false });
    this.name = 'ConfigError';
  }
}

/** Parses `KEY=value` lines; blank lines and # comments ignored. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

export function servicesEnvPath(stateDir: string): string {
  return path.resolve(stateDir, 'services.env');
}

export interface LoadOptions {
  /** Which connection settings must be present (default: all three). */
  require?: readonly (typeof CONNECTION_SETTINGS)[number][];
}

/**
 * Reads every setting from `env` (falling back to services.env for connection settings), validates
 * them and applies cross-field rules. Throws ConfigError with a single line naming the setting.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, opts: LoadOptions = {}): Config {
  const known = new Set(Object.values(settings).map((s) => s.env));
  for (const name of Object.keys(env)) {
    if (name.startsWith('KEYFLOW_') && !known.has(name)) {
      throw new ConfigError(
        `${name} is not a Keyflow setting; remove it or check its spelling (see README, Settings)`,
      );
    }
  }
  const stateDir = env.KEYFLOW_STATE_DIR || '.keyflow';
  let fileEnv: Record<string, string> = {};
  const file = servicesEnvPath(stateDir);
  if (fs.existsSync(file)) fileEnv = parseEnvFile(fs.readFileSync(file, 'utf8'));

  const required = new Set<string>(opts.require ?? CONNECTION_SETTINGS);
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(settings)) {
    const raw = env[spec.env] !== undefined && env[spec.env] !== '' ? env[spec.env] : fileEnv[spec.env];
    if (raw === undefined && (CONNECTION_SETTINGS as readonly string[]).includes(key)) {
      if (required.has(key)) {
        throw new ConfigError(
          `${spec.env} is not set; set it, or run \`npm run services -- up\` to start the local stack`,
        );
      }
      continue;
    }
    const parsed = spec.schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const shown = spec.secret ? '(hidden)' : JSON.stringify(raw);
      throw new ConfigError(`${spec.env}=${shown} is invalid: ${issue?.message ?? 'bad value'}`);
    }
    out[key] = parsed.data;
  }
  const cfg = out as Config;
  if (cfg.heartbeatIntervalMs * 3 > cfg.sessionTimeoutMs) {
    throw new ConfigError(
      `KEYFLOW_HEARTBEAT_INTERVAL_MS=${cfg.heartbeatIntervalMs} must be at most a third of KEYFLOW_SESSION_TIMEOUT_MS=${cfg.sessionTimeoutMs}; lower it to ${Math.floor(cfg.sessionTimeoutMs / 3)} or less`,
    );
  }
  if (cfg.rebalanceTimeoutMs < cfg.sessionTimeoutMs) {
    throw new ConfigError(
      `KEYFLOW_REBALANCE_TIMEOUT_MS=${cfg.rebalanceTimeoutMs} is below KEYFLOW_SESSION_TIMEOUT_MS=${cfg.sessionTimeoutMs}; raise it to ${cfg.sessionTimeoutMs} or more`,
    );
  }
  if (cfg.infraRetryBudgetMs * 2 > cfg.rebalanceTimeoutMs) {
    throw new ConfigError(
      `KEYFLOW_INFRA_RETRY_BUDGET_MS=${cfg.infraRetryBudgetMs} must be at most half of KEYFLOW_REBALANCE_TIMEOUT_MS=${cfg.rebalanceTimeoutMs}, so a batch gives up before the group drops its member; lower it to ${Math.floor(cfg.rebalanceTimeoutMs / 2)} or less`,
    );
  }
  if (cfg.retryBaseMs > cfg.retryMaxMs) {
    throw new ConfigError(
      `KEYFLOW_RETRY_BASE_MS=${cfg.retryBaseMs} exceeds KEYFLOW_RETRY_MAX_MS=${cfg.retryMaxMs}; raise the maximum or lower the base`,
    );
  }
  if (cfg.adminToken !== undefined && cfg.adminTokenHash !== undefined) {
    throw new ConfigError(
      'KEYFLOW_ADMIN_TOKEN and KEYFLOW_ADMIN_TOKEN_HASH are both set; keep only one (the hash, preferably)',
    );
  }
  if (cfg.adminPort !== 0 && cfg.adminPort === cfg.port) {
    throw new ConfigError(
      `ADMIN_PORT=${cfg.adminPort} equals PORT; the admin surface needs a listener of its own, pick another port`,
    );
  }
  const ports = [cfg.kafkaPort, cfg.kafkaControllerPort, cfg.registryPort, cfg.mongoPort];
  if (new Set(ports).size !== ports.length) {
    throw new ConfigError(
      'KEYFLOW_KAFKA_PORT, KEYFLOW_KAFKA_CONTROLLER_PORT, KEYFLOW_REGISTRY_PORT and KEYFLOW_MONGO_PORT must all differ',
    );
  }
  return cfg;
}

/** SHA-256 (hex) of the admin token the config names, from either setting; undefined when none is set. */
export function adminTokenHash(cfg: Pick<Config, 'adminToken' | 'adminTokenHash'>): string | undefined {
  return cfg.adminTokenHash ?? cfg.adminToken;
}

/** The URL with any password replaced, for logs and messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):([^@/]+)@/, '//$1:***@');
}
