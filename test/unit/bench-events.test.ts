// The benchmark's event set and scenarios without any service: Zipf key skew that sums exactly,
// deterministic choice of failing events, recorded JSONL parsed and refused line by line, late and
// duplicate worked out from the order, poison spread through the stream, a ground truth that counts
// each distinct event once whatever the arrival order, reproducible event sets, and scenario files
// validated, defaulted and selected by suite or name.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fold } from '../../src/appointments/reducer';
import type { AppointmentEvent } from '../../src/appointments/schemas';
import type { ConversionEvent } from '../../src/conversions/schemas';
import {
  buildEventSet,
  chosen,
  fromRecorded,
  groundTruth,
  parseRecorded,
  withPoison,
  zipfCounts,
  type BenchEvent,
} from '../../src/bench/events';
import { parseScenario, selectScenarios } from '../../src/bench/scenario';

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

const appt = (
  eventId: string,
  appointmentId: string,
  occurredAt: number,
  kind: AppointmentEvent['kind'] = 'SCHEDULED',
  scheduledFor: number | null = null,
): AppointmentEvent => ({
  eventId,
  tenantId: 't1',
  appointmentId,
  leadId: 'lead-1',
  kind,
  scheduledFor,
  occurredAt,
  source: 'test',
});

const conv = (
  eventId: string,
  leadId: string,
  occurredAt: number,
  amount: number | null = null,
  conversionType = 'sold',
): ConversionEvent => ({ eventId, tenantId: 't1', leadId, conversionType, occurredAt, amount });

const ab = (value: AppointmentEvent, late = false, duplicate = false): BenchEvent => ({
  flow: 'appointments',
  key: value.appointmentId,
  value,
  late,
  duplicate,
});

const cb = (value: ConversionEvent, late = false, duplicate = false): BenchEvent => ({
  flow: 'conversions',
  key: value.leadId,
  value,
  late,
  duplicate,
});

// ---------------------------------------------------------------------------------------------------
// zipfCounts

test('zipfCounts sums to leads × mean exactly', () => {
  for (const [leads, mean, skew] of [
    [1, 5, 1.2],
    [7, 3, 0.5],
    [100, 4, 1.2],
    [333, 7, 2.9],
    [500, 4, 3],
    [10, 0, 1],
  ] as const) {
    const counts = zipfCounts(leads, mean, skew);
    expect(counts).toHaveLength(leads);
    expect(sum(counts)).toBe(leads * mean);
    for (const c of counts) expect(Number.isInteger(c) && c >= 0).toBe(true);
  }
});

test('zipfCounts with skew 0 gives every lead the mean', () => {
  expect(zipfCounts(6, 4, 0)).toEqual([4, 4, 4, 4, 4, 4]);
  expect(zipfCounts(1000, 3, 0).every((c) => c === 3)).toBe(true);
});

test('zipfCounts with skew > 0 is non-increasing and the hottest lead gets more than the coldest', () => {
  for (const skew of [0.3, 1, 1.2, 2]) {
    const counts = zipfCounts(200, 4, skew);
    for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeLessThanOrEqual(counts[i - 1]!);
    expect(counts[0]!).toBeGreaterThan(counts[counts.length - 1]!);
  }
  // A higher exponent concentrates more on the first lead.
  expect(zipfCounts(200, 4, 2)[0]!).toBeGreaterThan(zipfCounts(200, 4, 1)[0]!);
});

test('zipfCounts of no leads is empty', () => {
  expect(zipfCounts(0, 4, 1.2)).toEqual([]);
  expect(zipfCounts(0, 4, 0)).toEqual([]);
});

// ---------------------------------------------------------------------------------------------------
// chosen

const ids = Array.from({ length: 10_000 }, (_, i) => `evt-${i}`);

test('chosen is deterministic for an id, share and salt', () => {
  for (const id of ids.slice(0, 200)) expect(chosen(id, 0.3, 's')).toBe(chosen(id, 0.3, 's'));
});

test('chosen with share 0 never chooses, with share 1 always does', () => {
  expect(ids.some((id) => chosen(id, 0, 's'))).toBe(false);
  expect(ids.every((id) => chosen(id, 1, 's'))).toBe(true);
});

test('chosen picks about the asked-for share', () => {
  const fraction = ids.filter((id) => chosen(id, 0.1, 'run-1')).length / ids.length;
  expect(fraction).toBeGreaterThanOrEqual(0.08);
  expect(fraction).toBeLessThanOrEqual(0.12);
  const half = ids.filter((id) => chosen(id, 0.5, 'run-1')).length / ids.length;
  expect(half).toBeGreaterThanOrEqual(0.45);
  expect(half).toBeLessThanOrEqual(0.55);
});

test('a larger share chooses a superset; another salt chooses another set', () => {
  const small = ids.filter((id) => chosen(id, 0.1, 'run-1'));
  expect(small.every((id) => chosen(id, 0.2, 'run-1'))).toBe(true);
  const other = ids.filter((id) => chosen(id, 0.1, 'run-2'));
  expect(other).not.toEqual(small);
  const overlap = other.filter((id) => small.includes(id)).length;
  expect(overlap).toBeLessThan(small.length / 2);
});

// ---------------------------------------------------------------------------------------------------
// parseRecorded

const lineA = JSON.stringify({ topic: 'appointments', value: appt('e1', 'a1', 100) });
const lineC = JSON.stringify({ topic: 'conversions', value: conv('c1', 'L1', 50, 12.5) });

test('parseRecorded reads appointment and conversion lines, skipping blank ones', () => {
  const lines = parseRecorded(`${lineA}\n\n   \n${lineC}\n`, 'rec.jsonl');
  expect(lines).toEqual([
    { topic: 'appointments', value: appt('e1', 'a1', 100) },
    { topic: 'conversions', value: conv('c1', 'L1', 50, 12.5) },
  ]);
});

test('parseRecorded refuses a line that is not JSON, naming file and line', () => {
  expect(() => parseRecorded(`${lineA}\n\n{not json\n${lineC}`, 'data/rec.jsonl')).toThrow(
    /^data\/rec\.jsonl:3: not JSON/,
  );
});

test('parseRecorded refuses an unknown topic and a missing field, naming the line', () => {
  const unknown = JSON.stringify({ topic: 'orders', value: appt('e1', 'a1', 1) });
  expect(() => parseRecorded(`${lineA}\n${unknown}`, 'rec.jsonl')).toThrow(/^rec\.jsonl:2: /);
  const { occurredAt: _omit, ...noTime } = conv('c2', 'L1', 5);
  const missing = JSON.stringify({ topic: 'conversions', value: noTime });
  expect(() => parseRecorded(`${lineC}\n${lineA}\n${missing}`, 'rec.jsonl')).toThrow(
    /^rec\.jsonl:3: value\.occurredAt: /,
  );
  // An extra top-level field is refused too: the line shape is strict.
  const extra = JSON.stringify({ topic: 'appointments', value: appt('e1', 'a1', 1), late: true });
  expect(() => parseRecorded(extra, 'rec.jsonl')).toThrow(/^rec\.jsonl:1: /);
});

test('parseRecorded refuses a file without events', () => {
  expect(() => parseRecorded('', 'empty.jsonl')).toThrow(/empty\.jsonl: no events/);
  expect(() => parseRecorded('\n  \n', 'empty.jsonl')).toThrow(/empty\.jsonl: no events/);
});

// ---------------------------------------------------------------------------------------------------
// fromRecorded

const recorded = parseRecorded(
  [
    { topic: 'appointments', value: appt('e1', 'a1', 100) },
    { topic: 'appointments', value: appt('e2', 'a1', 50, 'CANCELLED') }, // older than e1: late
    { topic: 'appointments', value: appt('e1', 'a1', 100) }, // e1 again: duplicate
    { topic: 'appointments', value: appt('e2', 'a1', 50, 'CANCELLED') }, // e2 again: duplicate, not late
    { topic: 'appointments', value: appt('e3', 'a2', 10) }, // another appointment: not late
    { topic: 'conversions', value: conv('c1', 'L1', 30) },
    { topic: 'conversions', value: conv('c2', 'L1', 20) }, // older than c1 of the same lead: late
    { topic: 'conversions', value: conv('c3', 'L2', 1) },
  ]
    .map((l) => JSON.stringify(l))
    .join('\n'),
  'rec.jsonl',
);

test('fromRecorded prefixes ids per run and copy, so two copies share no event id', () => {
  const events = fromRecorded(recorded, 'run9', 2);
  expect(events).toHaveLength(2 * recorded.length);
  const copy0 = events.slice(0, recorded.length);
  const copy1 = events.slice(recorded.length);
  for (const e of copy0) expect(e.value!.eventId.startsWith('run9-0-')).toBe(true);
  for (const e of copy1) expect(e.value!.eventId.startsWith('run9-1-')).toBe(true);
  const ids0 = new Set(copy0.map((e) => e.value!.eventId));
  expect(copy1.some((e) => ids0.has(e.value!.eventId))).toBe(false);
  expect(copy0[0]!.value).toEqual({
    ...appt('e1', 'a1', 100),
    eventId: 'run9-0-e1',
    tenantId: 'run9-0-t1',
    appointmentId: 'run9-0-a1',
    leadId: 'run9-0-lead-1',
  });
  // Everything but the ids is as recorded.
  expect(copy1[5]!.value).toEqual({
    ...conv('c1', 'L1', 30),
    eventId: 'run9-1-c1',
    tenantId: 'run9-1-t1',
    leadId: 'run9-1-L1',
  });
});

test('fromRecorded keys appointments by appointmentId and conversions by leadId', () => {
  for (const e of fromRecorded(recorded, 'r', 1)) {
    if (e.flow === 'appointments' && e.value) expect(e.key).toBe(e.value.appointmentId);
    else if (e.flow === 'conversions' && e.value) expect(e.key).toBe(e.value.leadId);
    else throw new Error('no poison expected');
  }
});

test('fromRecorded flags late and duplicate events from the order, in every copy', () => {
  const events = fromRecorded(recorded, 'r', 2);
  const flags = events.map((e) => [e.late, e.duplicate]);
  const once = [
    [false, false],
    [true, false],
    [false, true],
    [false, true], // a repeated late event is a duplicate, not late again
    [false, false],
    [false, false],
    [true, false],
    [false, false],
  ];
  expect(flags).toEqual([...once, ...once]);
});

// ---------------------------------------------------------------------------------------------------
// withPoison

const fifty: BenchEvent[] = Array.from({ length: 50 }, (_, i) =>
  i % 2 === 0 ? ab(appt(`e${i}`, `a${i % 7}`, i)) : cb(conv(`c${i}`, `L${i % 5}`, i)),
);

test('withPoison adds exactly n poison records with distinct keys and null values', () => {
  const out = withPoison(fifty, 5, 'run3');
  expect(out).toHaveLength(55);
  const poison = out.filter((e) => e.value === null);
  expect(poison).toHaveLength(5);
  expect(new Set(poison.map((p) => p.key)).size).toBe(5);
  for (const p of poison) {
    expect(p.key.startsWith('run3-')).toBe(true);
    expect(p.late).toBe(false);
    expect(p.duplicate).toBe(false);
    expect('poison' in p && Buffer.isBuffer(p.poison)).toBe(true);
  }
  // Both inputs get some.
  expect(new Set(poison.map((p) => p.flow))).toEqual(new Set(['appointments', 'conversions']));
  // No poison key is a real entity's key.
  const realKeys = new Set(fifty.map((e) => e.key));
  expect(poison.some((p) => realKeys.has(p.key))).toBe(false);
});

test('withPoison spreads the poison through the stream and keeps the others in order', () => {
  const out = withPoison(fifty, 5, 'run3');
  const at = out.flatMap((e, i) => (e.value === null ? [i] : []));
  expect(at[0]!).toBeLessThan(out.length / 2);
  // Roughly evenly spaced: no two poison records adjacent.
  for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThan(1);
  expect(out.filter((e) => e.value !== null)).toEqual(fifty);
  // Same objects, same order: nothing copied or reordered.
  out.filter((e) => e.value !== null).forEach((e, i) => expect(e).toBe(fifty[i]));
  // The input is not modified.
  expect(fifty).toHaveLength(50);
});

test('withPoison of 0 adds nothing', () => {
  expect(withPoison(fifty, 0, 'r')).toEqual(fifty);
});

// ---------------------------------------------------------------------------------------------------
// groundTruth

test('groundTruth counts duplicates once and folds each appointment whatever the arrival order', () => {
  const a1 = appt('e1', 'a1', 100, 'SCHEDULED', 5000);
  const a2 = appt('e2', 'a1', 200, 'RESCHEDULED', 6000);
  const a3 = appt('e3', 'a1', 300, 'COMPLETED');
  const b1 = appt('f1', 'b1', 10, 'SCHEDULED', 900);
  const b2 = appt('f2', 'b1', 20, 'NO_SHOW');
  const events = [
    ab(a2),
    ab(b2),
    ab(a1, true), // late
    ab(a3),
    ab(a1, true, true), // duplicate of a late event
    ab(b1, true), // late
    ab(a2, false, true),
  ];
  const truth = groundTruth(events);
  expect(truth.changeRows).toBe(5);
  expect(truth.lateAppointments).toBe(2);
  expect([...truth.appointments.keys()].sort()).toEqual(['a1', 'b1']);
  expect(truth.appointments.get('a1')).toEqual(fold([a1, a2, a3]));
  expect(truth.appointments.get('b1')).toEqual(fold([b1, b2]));
  // The result is the in-order fold: last status wins, latest non-null slot kept.
  expect(truth.appointments.get('a1')).toMatchObject({ status: 'COMPLETED', scheduledFor: 6000 });
  const reversed = groundTruth([...events].reverse());
  expect(reversed.appointments).toEqual(truth.appointments);
  expect(reversed.changeRows).toBe(5);
  expect(truth.poison).toBe(0);
  expect(truth.entities).toBe(2);
});

test('groundTruth conversion rows count and sum the distinct events only', () => {
  const c1 = conv('c1', 'L1', 100, 10.25);
  const c2 = conv('c2', 'L1', 50, 4.5);
  const c3 = conv('c3', 'L1', 70, null, 'contacted');
  const c4 = conv('c4', 'L2', 20, 1);
  const events = [cb(c1), cb(c2, true), cb(c1, false, true), cb(c3), cb(c4), cb(c2, true, true)];
  const truth = groundTruth(events);
  expect(truth.conversions.size).toBe(3);
  expect(truth.conversions.get(JSON.stringify(['t1', 'L1', 'sold']))).toEqual({
    tenantId: 't1',
    leadId: 'L1',
    conversionType: 'sold',
    count: 2,
    amount: 14.75,
    firstAt: 50,
    lastAt: 100,
  });
  expect(truth.conversions.get(JSON.stringify(['t1', 'L1', 'contacted']))).toMatchObject({
    count: 1,
    amount: 0,
  });
  expect(truth.conversions.get(JSON.stringify(['t1', 'L2', 'sold']))).toMatchObject({
    count: 1,
    amount: 1,
  });
  // Late conversions are not late appointments; conversions make no change rows.
  expect(truth.lateAppointments).toBe(0);
  expect(truth.changeRows).toBe(0);
  expect(truth.entities).toBe(2);
});

test('groundTruth counts poison and leaves it out of the tables', () => {
  const real = [ab(appt('e1', 'a1', 1)), cb(conv('c1', 'L1', 1, 3))];
  const truth = groundTruth(withPoison(real, 3, 'r'));
  expect(truth.poison).toBe(3);
  expect(truth.changeRows).toBe(1);
  expect(truth.appointments.size).toBe(1);
  expect(truth.conversions.size).toBe(1);
  expect(truth.entities).toBe(2);
});

// ---------------------------------------------------------------------------------------------------
// buildEventSet

const NOW = Date.UTC(2026, 2, 1);

const synthetic = (over: Record<string, unknown> = {}) =>
  parseScenario(
    JSON.stringify({
      name: 'synth',
      description: 'a synthetic scenario for the tests',
      source: { kind: 'synthetic', seed: 42, appointments: 120, leads: 80, conversionsPerLead: 3 },
      keySkew: 1.2,
      lateShare: 0.1,
      duplicateShare: 0.05,
      failures: { transientShare: 0.5, transientAttempts: 2, poisonShare: 0.02 },
      ...over,
    }),
    'x/synth.json',
  );

test('buildEventSet is reproducible for a seed and differs for another', () => {
  const a = buildEventSet(synthetic(), 'r1', NOW);
  const b = buildEventSet(synthetic(), 'r1', NOW);
  expect(b.events).toEqual(a.events);
  expect([...b.failing].sort()).toEqual([...a.failing].sort());
  expect(a.source).toBe('synthetic (seed 42)');
  const other = buildEventSet(
    synthetic({
      source: { kind: 'synthetic', seed: 43, appointments: 120, leads: 80, conversionsPerLead: 3 },
    }),
    'r1',
    NOW,
  );
  expect(other.events).not.toEqual(a.events);
});

test('buildEventSet marks about the transient share of events failing', () => {
  const set = buildEventSet(synthetic(), 'r1', NOW);
  expect(set.transientAttempts).toBe(2);
  const realIds = new Set(set.events.flatMap((e) => (e.value ? [e.value.eventId] : [])));
  for (const id of set.failing) expect(realIds.has(id)).toBe(true);
  const share = set.failing.size / realIds.size;
  expect(share).toBeGreaterThan(0.4);
  expect(share).toBeLessThan(0.6);
  expect(buildEventSet(synthetic({ failures: {} }), 'r1', NOW).failing.size).toBe(0);
});

test('buildEventSet adds round(real × poisonShare) poison records and counts them in the truth', () => {
  const set = buildEventSet(synthetic(), 'r1', NOW);
  const poison = set.events.filter((e) => e.value === null).length;
  const real = set.events.length - poison;
  expect(real).toBeGreaterThan(500);
  expect(poison).toBe(Math.round(real * 0.02));
  expect(set.truth.poison).toBe(poison);
  const none = buildEventSet(synthetic({ failures: { transientShare: 0.5 } }), 'r1', NOW);
  expect(none.events.filter((e) => e.value === null)).toHaveLength(0);
  expect(none.events).toHaveLength(real);
});

test('buildEventSet gives the hot leads their Zipf share of conversions', () => {
  const set = buildEventSet(synthetic(), 'r1', NOW);
  const perLead = new Map<string, Set<string>>();
  for (const e of set.events) {
    if (e.flow !== 'conversions' || e.value === null) continue;
    const s = perLead.get(e.key) ?? new Set<string>();
    s.add(e.value.eventId);
    perLead.set(e.key, s);
  }
  const want = zipfCounts(80, 3, 1.2);
  expect(perLead.get('r1-lead-0')?.size).toBe(want[0]);
  expect(perLead.get('r1-lead-1')?.size).toBe(want[1]);
  expect(want[0]!).toBeGreaterThan(3 * 3);
  // And the truth agrees with what was generated.
  expect(set.truth.changeRows).toBe(
    new Set(set.events.flatMap((e) => (e.flow === 'appointments' && e.value ? [e.value.eventId] : []))).size,
  );
});

test('buildEventSet replays a recorded file relative to the scenario file, each copy under fresh ids', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-bench-rec-'));
  try {
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'data', 'rec.jsonl'), `${lineA}\n${lineC}\n`);
    const file = path.join(dir, 'scenarios', 'rec.json');
    const s = parseScenario(
      JSON.stringify({
        name: 'rec',
        description: 'recorded',
        source: { kind: 'recorded', file: '../data/rec.jsonl', repeat: 3 },
      }),
      file,
    );
    const set = buildEventSet(s, 'rr', NOW);
    expect(set.events).toHaveLength(6);
    expect(new Set(set.events.map((e) => e.value!.eventId)).size).toBe(6);
    expect(set.truth.changeRows).toBe(3);
    expect(set.source).toMatch(/rec\.jsonl ×3$/);
    const missing = { ...s, source: { kind: 'recorded' as const, file: 'nope.jsonl', repeat: 1 } };
    expect(() => buildEventSet(missing, 'rr', NOW)).toThrow(/nope\.jsonl not found/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------------
// parseScenario

const minimal = {
  name: 'tiny',
  description: 'the least a scenario needs',
  source: { kind: 'synthetic', seed: 1, appointments: 1, leads: 1, conversionsPerLead: 1 },
};

test('parseScenario fills the defaults', () => {
  const s = parseScenario(JSON.stringify(minimal), 'some/dir/tiny.json');
  expect(s.file).toBe('some/dir/tiny.json');
  expect(s.baselines).toEqual(['passthrough', 'storeCeiling', 'incumbent', 'bullmq']);
  expect(s.load.openLoop).toEqual([0.5]);
  expect(s.load.max).toBe(true);
  expect(s.load.openLoopBaselines).toEqual(['passthrough']);
  expect(s.suites).toEqual([]);
  expect(s.tenants).toEqual({ count: 3, settings: {} });
  expect(s.runtime).toEqual({ entityLocking: 'off' });
  expect(s.failures).toEqual({ transientShare: 0, transientAttempts: 1, poisonShare: 0 });
  expect(s.keySkew).toBe(0);
  expect(s.partitions).toBe(6);
  expect(s.timeLimitSeconds).toBe(300);
  // Defaults inside a partly given object are filled too.
  const partial = parseScenario(JSON.stringify({ ...minimal, load: { openLoop: [0.2, 0.9] } }), 'tiny.json');
  expect(partial.load).toEqual({
    max: true,
    maxRepeats: 3,
    openLoop: [0.2, 0.9],
    openLoopSeconds: 10,
    openLoopBaselines: ['passthrough'],
  });
});

test('parseScenario refuses a file that is not JSON', () => {
  expect(() => parseScenario('{"name": ', 'x/tiny.json')).toThrow(/^x\/tiny\.json: not JSON/);
});

test('parseScenario refuses a bad field, naming its path', () => {
  const bad = (over: Record<string, unknown>) => () =>
    parseScenario(JSON.stringify({ ...minimal, ...over }), 'x/tiny.json');
  expect(bad({ lateShare: 1.5 })).toThrow(/^x\/tiny\.json: lateShare: /);
  expect(bad({ failures: { transientAttempts: 9 } })).toThrow(
    /^x\/tiny\.json: failures\.transientAttempts: /,
  );
  expect(bad({ source: { ...minimal.source, seed: 1.5 } })).toThrow(/^x\/tiny\.json: source\.seed: /);
  expect(bad({ load: { openLoop: [0] } })).toThrow(/^x\/tiny\.json: load\.openLoop\.0: /);
  expect(bad({ baselines: ['kafka'] })).toThrow(/^x\/tiny\.json: baselines\.0: /);
  expect(bad({ source: { kind: 'recorded' } })).toThrow(/^x\/tiny\.json: source\.file: /);
  expect(bad({ name: 'Tiny' })).toThrow(/^x\/tiny\.json: name: lower-case letters/);
  expect(bad({ colour: 'blue' })).toThrow(/^x\/tiny\.json: \(top\): .*colour/);
  expect(() => parseScenario(JSON.stringify({ name: 'tiny' }), 'x/tiny.json')).toThrow(
    /^x\/tiny\.json: description: /,
  );
});

test('parseScenario refuses a name that differs from the file name', () => {
  expect(() => parseScenario(JSON.stringify(minimal), 'x/other.json')).toThrow(
    /x\/other\.json: name "tiny" must match the file name "other"/,
  );
});

// ---------------------------------------------------------------------------------------------------
// selectScenarios

const scenarioFile = (name: string, suites: string[]) =>
  JSON.stringify({ ...minimal, name, description: `scenario ${name}`, suites });

test('selectScenarios picks by suite, by name, or by path, and names the choices when unknown', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-bench-scenarios-'));
  try {
    // Written in reverse order: the listing is sorted by file name.
    fs.writeFileSync(path.join(dir, 'beta.json'), scenarioFile('beta', ['all']));
    fs.writeFileSync(path.join(dir, 'alpha.json'), scenarioFile('alpha', ['quick', 'all']));
    fs.writeFileSync(path.join(dir, 'README.md'), 'not a scenario');
    expect(selectScenarios('quick', dir).map((s) => s.name)).toEqual(['alpha']);
    expect(selectScenarios('all', dir).map((s) => s.name)).toEqual(['alpha', 'beta']);
    expect(selectScenarios('beta', dir).map((s) => s.name)).toEqual(['beta']);
    expect(selectScenarios('beta', dir)[0]!.file).toBe(path.join(dir, 'beta.json'));
    expect(selectScenarios(path.join(dir, 'beta.json'), '/nowhere').map((s) => s.name)).toEqual(['beta']);
    expect(() => selectScenarios('gamma', dir)).toThrow(
      /unknown scenario "gamma"; choose quick, all, or one of: alpha, beta$/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('selectScenarios refuses a suite no file lists and a missing folder', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-bench-scenarios-'));
  try {
    fs.writeFileSync(path.join(dir, 'beta.json'), scenarioFile('beta', ['all']));
    expect(() => selectScenarios('quick', dir)).toThrow(/lists the suite "quick"/);
    expect(() => selectScenarios('all', path.join(dir, 'missing'))).toThrow(/no scenario folder/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
