// The tenant-settings cache folds records into per-tenant settings, refuses an invalid update while the
// tenant keeps its previous settings, deletes on a tombstone, switches entity locking via key `*`, and
// never lets a secret value reach the log or a rejection reason.
import { Writable } from 'node:stream';
import { z } from 'zod';
import { EVENTS, Instrumentation } from '../../src/instrumentation';
import { createLogger } from '../../src/logger';
import { redactSecrets, TenantSettingsCache } from '../../src/settings/tenant-settings';

const schema = z.strictObject({
  currency: z.string().length(3),
  statusMap: z.record(z.string(), z.string()),
  crm: z
    .strictObject({ url: z.string().url(), apiKey: z.string().min(8), password: z.string().optional() })
    .optional(),
});
type Raw = z.infer<typeof schema>;
interface Ready {
  currency: string;
  status: Map<string, string>;
  crmUrl: string | undefined;
}

function setup() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const log = createLogger('debug', sink);
  const instrumentation = new Instrumentation(log);
  const seen: { name: string; key: string; reason?: string }[] = [];
  instrumentation.on(EVENTS.SETTINGS_APPLIED, (p) => seen.push({ name: 'applied', key: p.key }));
  instrumentation.on(EVENTS.SETTINGS_REJECTED, (p) => seen.push({ name: 'rejected', ...p }));
  const cache = new TenantSettingsCache<Ready, Raw>({
    schema,
    preprocess: (raw) => {
      if (raw.statusMap.forbidden) throw new Error(`status "forbidden" is reserved (key ${raw.crm?.apiKey})`);
      return { currency: raw.currency, status: new Map(Object.entries(raw.statusMap)), crmUrl: raw.crm?.url };
    },
    defaults: { entityLocking: 'off' },
    log,
    instrumentation,
  });
  return { cache, lines, seen };
}

const record = (tenantId: string, settings: unknown) => ({
  tenantId,
  settings: typeof settings === 'string' ? settings : JSON.stringify(settings),
});

const good = {
  currency: 'EUR',
  statusMap: { booked: 'scheduled' },
  crm: { url: 'https://crm.example', apiKey: 'sk-live-SECRET1' },
};

test('a valid record is preprocessed and readable synchronously', () => {
  const { cache, seen } = setup();
  expect(cache.apply('t1', record('t1', good))).toBe('applied');
  const s = cache.get('t1')!;
  expect(s.currency).toBe('EUR');
  expect(s.status.get('booked')).toBe('scheduled');
  expect(cache.get('t2')).toBeUndefined();
  expect(seen).toEqual([{ name: 'applied', key: 't1' }]);
});

test('an invalid update is rejected with a reason and the previous settings stay in force', () => {
  const { cache, seen } = setup();
  cache.apply('t1', record('t1', good));
  expect(cache.apply('t1', record('t1', { ...good, currency: 'EURO' }))).toBe('rejected');
  expect(cache.apply('t1', record('t1', '{not json'))).toBe('rejected');
  expect(cache.apply('t1', record('t1', { ...good, extra: 1 }))).toBe('rejected');
  expect(cache.apply('t1', { tenantId: 't1' })).toBe('rejected');
  expect(cache.apply('t1', record('t2', good))).toBe('rejected');
  expect(cache.get('t1')!.currency).toBe('EUR');
  const reasons = seen.filter((s) => s.name === 'rejected').map((s) => s.reason);
  expect(reasons[0]).toMatch(/^currency: /);
  expect(reasons[1]).toBe('settings is not valid JSON');
  expect(reasons[2]).toMatch(/extra/);
  expect(reasons[3]).toMatch(/settings/);
  expect(reasons[4]).toMatch(/differs from its tenantId t2/);
});

test('a tombstone deletes the tenant; other tenants are untouched', () => {
  const { cache } = setup();
  cache.apply('t1', record('t1', good));
  cache.apply('t2', record('t2', { ...good, currency: 'USD' }));
  expect(cache.apply('t1', null)).toBe('deleted');
  expect(cache.get('t1')).toBeUndefined();
  expect(cache.get('t2')!.currency).toBe('USD');
  expect(cache.size).toBe(1);
});

test('a throwing preprocess rejects the update without logging the secret it mentions', () => {
  const { cache, lines, seen } = setup();
  const bad = { ...good, statusMap: { forbidden: 'x' } };
  expect(cache.apply('t1', record('t1', bad))).toBe('rejected');
  expect(cache.get('t1')).toBeUndefined();
  const reason = seen.find((s) => s.name === 'rejected')!.reason!;
  expect(reason).toMatch(/preprocess failed: status "forbidden" is reserved \(key \[redacted\]\)/);
  expect(lines.join('')).not.toContain('sk-live-SECRET1');
});

test('secret-named fields never reach the log, applied or rejected', () => {
  const { cache, lines } = setup();
  const withSecrets = { ...good, crm: { ...good.crm, password: 'hunter2-pass' } };
  cache.apply('t1', record('t1', withSecrets));
  cache.apply('t1', record('t1', { ...withSecrets, crm: { ...withSecrets.crm, url: 'not a url' } }));
  cache.apply('t1', record('t1', `{"crm": {"apiKey": "sk-live-SECRET1" oops}`));
  const out = lines.join('');
  expect(out).toContain('tenant settings applied');
  expect(out).toContain('rejected');
  expect(out).not.toContain('sk-live-SECRET1');
  expect(out).not.toContain('hunter2-pass');
  expect(redactSecrets({ a: { clientSecret: 'x', token: 1, nested: [{ apiKey: 'y' }] }, ok: 'z' })).toEqual({
    a: { clientSecret: '[redacted]', token: '[redacted]', nested: [{ apiKey: '[redacted]' }] },
    ok: 'z',
  });
});

test('key `*` switches entity locking at runtime; its tombstone restores the configured default', () => {
  const { cache } = setup();
  expect(cache.runtime().entityLocking).toBe('off');
  expect(cache.apply('*', record('*', { entityLocking: 'lease' }))).toBe('applied');
  expect(cache.runtime().entityLocking).toBe('lease');
  expect(cache.apply('*', record('*', { entityLocking: 'sometimes' }))).toBe('rejected');
  expect(cache.runtime().entityLocking).toBe('lease');
  expect(cache.get('*')).toBeUndefined();
  expect(cache.apply('*', null)).toBe('deleted');
  expect(cache.runtime().entityLocking).toBe('off');
});
