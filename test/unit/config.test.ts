// Settings: defaults as data, one-line errors that name the setting, unknown KEYFLOW_* refused,
// the settings table in docs/operating.md is checked by test/unit/docs.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { adminTokenHash, ConfigError, loadConfig, parseEnvFile, redactUrl } from '../../src/config';
import { groupIdFor, transactionalIdFor } from '../../src/topology/names';

const base = {
  KAFKA_BROKERS: '127.0.0.1:9092',
  SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081',
  MONGO_URL: 'mongodb://127.0.0.1:27017/',
  KEYFLOW_STATE_DIR: path.join(os.tmpdir(), 'keyflow-config-test-none'),
};

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

test('defaults apply when only the connection settings are given', () => {
  const cfg = loadConfig(base);
  expect(cfg.kafkaBrokers).toEqual(['127.0.0.1:9092']);
  expect(cfg.port).toBe(8080);
  expect(cfg.keyLanes).toBe(16);
  expect(cfg.maxAttempts).toBe(5);
  expect(cfg.mongoDb).toBe('keyflow');
});

test('a missing connection setting names itself and the command that provides it', () => {
  const { KAFKA_BROKERS: _omit, ...env } = base;
  const err = errorOf(env);
  expect(err.message).toMatch(/^KAFKA_BROKERS is not set; .*services -- up/);
  expect(err.message).not.toContain('\n');
  expect(err.code).toBe('CONFIG_INVALID');
  expect(err.retriable).toBe(false);
});

test('an invalid value names the setting and the rule in one line', () => {
  const err = errorOf({ ...base, KAFKA_BROKERS: 'localhost' });
  expect(err.message).toBe('KAFKA_BROKERS="localhost" is invalid: each broker must be host:port');
  expect(errorOf({ ...base, PORT: '70000' }).message).toMatch(/^PORT="70000" is invalid/);
  expect(errorOf({ ...base, KEYFLOW_MONGO_SERVER: 'mysql' }).message).toMatch(
    /^KEYFLOW_MONGO_SERVER="mysql"/,
  );
});

test('a secret setting is never echoed back in its error', () => {
  const err = errorOf({ ...base, MONGO_URL: 'postgres://user:hunter2@db/x' });
  expect(err.message).toMatch(/^MONGO_URL=\(hidden\) is invalid/);
  expect(err.message).not.toContain('hunter2');
});

test('an unknown KEYFLOW_ variable is refused as a likely typo', () => {
  expect(errorOf({ ...base, KEYFLOW_KEYLANES: '4' }).message).toMatch(
    /^KEYFLOW_KEYLANES is not a Keyflow setting/,
  );
});

test('cross-field rules explain the fix', () => {
  const err = errorOf({ ...base, KEYFLOW_SESSION_TIMEOUT_MS: '9000', KEYFLOW_HEARTBEAT_INTERVAL_MS: '4000' });
  expect(err.message).toMatch(/at most a third of KEYFLOW_SESSION_TIMEOUT_MS=9000; lower it to 3000 or less/);
  expect(errorOf({ ...base, KEYFLOW_KAFKA_PORT: '1234', KEYFLOW_MONGO_PORT: '1234' }).message).toMatch(
    /must all differ/,
  );
  expect(errorOf({ ...base, KEYFLOW_INFRA_RETRY_BUDGET_MS: '40000' }).message).toMatch(
    /^KEYFLOW_INFRA_RETRY_BUDGET_MS=40000 must be at most half of KEYFLOW_REBALANCE_TIMEOUT_MS=60000/,
  );
  expect(errorOf({ ...base, KEYFLOW_REBALANCE_TIMEOUT_MS: '20000' }).message).toMatch(
    /KEYFLOW_REBALANCE_TIMEOUT_MS=20000 is below KEYFLOW_SESSION_TIMEOUT_MS=30000/,
  );
});

test('services.env fills connection settings the environment leaves unset, and the environment wins', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-cfg-'));
  fs.writeFileSync(
    path.join(dir, 'services.env'),
    '# comment\nKAFKA_BROKERS=127.0.0.1:29092\nSCHEMA_REGISTRY_URL=http://127.0.0.1:28081\nMONGO_URL=mongodb://127.0.0.1:27027/\n',
  );
  const cfg = loadConfig({ KEYFLOW_STATE_DIR: dir, MONGO_URL: 'mongodb://elsewhere:1/' });
  expect(cfg.kafkaBrokers).toEqual(['127.0.0.1:29092']);
  expect(cfg.mongoUrl).toBe('mongodb://elsewhere:1/');
});

test('parseEnvFile ignores comments and blank lines', () => {
  expect(parseEnvFile('\n# x\nA=1\nB = two=2\n')).toEqual({ A: '1', B: 'two=2' });
});

test('redactUrl hides a password', () => {
  expect(redactUrl('mongodb://app:s3cret@db:27017/x')).toBe('mongodb://app:***@db:27017/x');
});

test('the admin token is kept only as its hash, from either setting, and never echoed', () => {
  const token = 'an-admin-token-of-more-than-32-characters';
  const hash = createHash('sha256').update(token).digest('hex');
  const plain = loadConfig({ ...base, KEYFLOW_ADMIN_TOKEN: token });
  expect(adminTokenHash(plain)).toBe(hash);
  expect(JSON.stringify(plain)).not.toContain(token);
  expect(adminTokenHash(loadConfig({ ...base, KEYFLOW_ADMIN_TOKEN_HASH: hash.toUpperCase() }))).toBe(hash);
  expect(adminTokenHash(loadConfig(base))).toBeUndefined();
  expect(loadConfig(base)).toMatchObject({ adminPort: 8081, adminHost: '127.0.0.1' });

  const short = errorOf({ ...base, KEYFLOW_ADMIN_TOKEN: 'short-secret' });
  expect(short.message).toMatch(/^KEYFLOW_ADMIN_TOKEN=\(hidden\) is invalid: must be at least 32/);
  expect(short.message).not.toContain('short-secret');
  expect(errorOf({ ...base, KEYFLOW_ADMIN_TOKEN_HASH: 'abc' }).message).toMatch(
    /^KEYFLOW_ADMIN_TOKEN_HASH=\(hidden\) is invalid: must be the SHA-256/,
  );
  expect(errorOf({ ...base, KEYFLOW_ADMIN_TOKEN: token, KEYFLOW_ADMIN_TOKEN_HASH: hash }).message).toMatch(
    /KEYFLOW_ADMIN_TOKEN and KEYFLOW_ADMIN_TOKEN_HASH are both set/,
  );
  expect(errorOf({ ...base, PORT: '9000', ADMIN_PORT: '9000' }).message).toMatch(
    /^ADMIN_PORT=9000 equals PORT/,
  );
});

test('the asset policy settings: lists split on commas, a bad range names its setting', () => {
  const cfg = loadConfig({
    ...base,
    KEYFLOW_ASSET_ALLOW_HOSTS: 'cdn.example.com, *.assets.example',
    KEYFLOW_ASSET_ALLOW_ADDRESSES: '10.1.0.0/16,::1',
  });
  expect(cfg.assetAllowHosts).toEqual(['cdn.example.com', '*.assets.example']);
  expect(cfg.assetAllowAddresses).toEqual(['10.1.0.0/16', '::1']);
  expect(loadConfig(base)).toMatchObject({
    assetFileRoot: undefined,
    assetAllowHosts: [],
    assetAllowAddresses: [],
  });
  const err = errorOf({ ...base, KEYFLOW_ASSET_ALLOW_ADDRESSES: '10.0.0.0/40' });
  expect(err.message).toMatch(/KEYFLOW_ASSET_ALLOW_ADDRESSES/);
  expect(err.message).toMatch(/CIDR/);
  expect(err.message.split('\n')).toHaveLength(1);
  expect(errorOf({ ...base, KEYFLOW_ASSET_ALLOW_HOSTS: 'http://x' }).message).toMatch(
    /KEYFLOW_ASSET_ALLOW_HOSTS/,
  );
});

test('the application id defaults to empty (bare stage names) and prefixes group ids when set', () => {
  expect(loadConfig(base).applicationId).toBe('');
  expect(groupIdFor(loadConfig(base).applicationId, 'batches.fold')).toBe('batches.fold');
  const cfg = loadConfig({ ...base, KEYFLOW_APPLICATION_ID: 'prod-eu' });
  expect(groupIdFor(cfg.applicationId, 'batches.fold')).toBe('prod-eu.batches.fold');
  expect(transactionalIdFor(cfg.applicationId, 'appointments', 3)).toBe('prod-eu.appointments.tx.3');
});

test('a bad application id stops start-up with one line naming it', () => {
  for (const bad of ['prod.eu', 'has space', 'x'.repeat(65)]) {
    const err = errorOf({ ...base, KEYFLOW_APPLICATION_ID: bad });
    expect(err.message).toMatch(/^KEYFLOW_APPLICATION_ID=".*" is invalid: must be at most 64 letters/);
    expect(err.message).not.toContain('\n');
  }
});
