// How the benchmark turns measurements into results, without any service: a contestant's figures
// (throughput from the drain, latencies from the open load nearest half the pipeline's maximum, the
// latency curve in load order, notes labelled by load), the ratios and the targets judged on them
// either side of each threshold, the store ceiling's writes for a small event list (their counts per
// collection, nothing for poison, the appointment it writes equal to the reducer's fold), and the
// canonical JSON the correctness check compares documents with.
import { fold } from '../../src/appointments/reducer';
import type { AppointmentEvent } from '../../src/appointments/schemas';
import { storeWrites } from '../../src/bench/baselines';
import { eventKey } from '../../src/state/event-identity';
import { canonicalJson } from '../../src/bench/correctness';
import { withPoison, type BenchEvent } from '../../src/bench/events';
import { contestantResult, medianRun, ratiosAndTargets } from '../../src/bench/run';
import type { ContestantResult, Measurement, ScenarioResult, TargetCheck } from '../../src/bench/types';
import type { ConversionEvent } from '../../src/conversions/schemas';

const measurement = (over: Partial<Measurement>): Measurement => ({
  contestant: 'pipeline',
  mode: 'max',
  events: 1000,
  completed: 1000,
  elapsedMs: 1000,
  throughput: 1000,
  latency: null,
  errors: 0,
  retries: 0,
  deadLetters: 0,
  outOfOrder: 0,
  correct: null,
  notes: [],
  timedOut: false,
  ...over,
});

const open = (offeredRate: number, p50: number, p99: number, notes: string[] = []): Measurement =>
  measurement({
    mode: 'open',
    offeredRate,
    throughput: offeredRate - 1,
    latency: { count: 100, p50, p95: p99 - 1, p99, max: p99 + 10 },
    correct: null,
    notes,
  });

// ---------------------------------------------------------------------------------------------------
// contestantResult

const runs: Measurement[] = [
  open(900, 30, 300),
  measurement({
    throughput: 1800,
    correct: true,
    errors: 2,
    retries: 3,
    deadLetters: 1,
    outOfOrder: 4,
    notes: ['drained'],
    latency: { count: 1000, p50: 1000, p95: 2000, p99: 3000, max: 4000 },
  }),
  open(450, 5, 20, ['paced']),
  // Nearest to every half below, but without latencies: never picked, never on the curve.
  measurement({ mode: 'open', offeredRate: 500, throughput: 400, latency: null, notes: ['cut short'] }),
  open(225, 2, 8),
];

test('contestantResult takes throughput and counters from the max-mode run', () => {
  const r = contestantResult(runs, 900);
  expect(r.throughput).toBe(1800);
  expect(r.correct).toBe(true);
  expect(r.errors).toBe(2);
  expect(r.retries).toBe(3);
  expect(r.deadLetters).toBe(1);
  expect(r.outOfOrder).toBe(4);
});

test('contestantResult takes latencies from the open run nearest the half-load rate', () => {
  expect(contestantResult(runs, 900)).toMatchObject({ p50: 30, p95: 299, p99: 300, max: 310 });
  expect(contestantResult(runs, 480)).toMatchObject({ p50: 5, p99: 20 });
  expect(contestantResult(runs, 300)).toMatchObject({ p50: 2, p99: 8 });
  expect(contestantResult(runs, 700)).toMatchObject({ p50: 30, p99: 300 }); // |200| < |250|
  expect(contestantResult(runs, 600)).toMatchObject({ p50: 5, p99: 20 }); // |150| < |300|
});

test('contestantResult has the curve sorted by offered rate, from open runs with latencies', () => {
  expect(contestantResult(runs, 900).curve).toEqual([
    { offeredRate: 225, achievedRate: 224, p50: 2, p95: 7, p99: 8, max: 18 },
    { offeredRate: 450, achievedRate: 449, p50: 5, p95: 19, p99: 20, max: 30 },
    { offeredRate: 900, achievedRate: 899, p50: 30, p95: 299, p99: 300, max: 310 },
  ]);
  // The input is not reordered.
  expect(runs.map((m) => m.offeredRate)).toEqual([900, undefined, 450, 500, 225]);
});

test('contestantResult prefixes the notes of open runs with their rate', () => {
  expect(contestantResult(runs, 900).notes).toEqual(['drained', '@450/s: paced', '@500/s: cut short']);
});

test('contestantResult without a max run or open runs has no figures', () => {
  const none = contestantResult([], 100);
  expect(none).toMatchObject({ throughput: 0, p50: null, p99: null, max: null, correct: null, errors: 0 });
  expect(none.curve).toEqual([]);
  const onlyMax = contestantResult([measurement({ throughput: 50, correct: false })], 25);
  expect(onlyMax).toMatchObject({ throughput: 50, p50: null, p99: null, correct: false });
  const onlyOpen = contestantResult([open(100, 1, 2)], 100);
  expect(onlyOpen).toMatchObject({ throughput: 0, p50: 1, p99: 2, correct: null });
});

// ---------------------------------------------------------------------------------------------------
// ratiosAndTargets

const result = (
  throughput: number,
  p99: number | null = null,
  correct: boolean | null = null,
): ContestantResult => ({
  throughput,
  p50: p99,
  p95: p99,
  p99,
  max: p99,
  correct,
  errors: 0,
  retries: 0,
  deadLetters: 0,
  outOfOrder: 0,
  notes: [],
  curve: [],
});

const target = (targets: TargetCheck[], name: string): TargetCheck => {
  const t = targets.find((x) => x.name === name);
  if (!t) throw new Error(`no target ${name}`);
  return t;
};

const LOWER = 'throughput vs the lower ceiling';
const INCUMBENT = 'throughput vs incumbent';
const BULLMQ = 'throughput vs bullmq';
const P99 = 'p99 at half load vs passthrough';

test('the lower ceiling is the smaller of passthrough and storeCeiling', () => {
  const a = ratiosAndTargets(result(600), { passthrough: result(1000), storeCeiling: result(800) });
  expect(a.ratios['pipeline / passthrough']).toBe(0.6);
  expect(a.ratios['pipeline / storeCeiling']).toBe(0.75);
  expect(a.ratios['pipeline / lower ceiling']).toBe(0.75);
  const b = ratiosAndTargets(result(600), { passthrough: result(700), storeCeiling: result(2000) });
  expect(b.ratios['pipeline / lower ceiling']).toBe(0.86);
  // A ceiling that measured nothing is not a ceiling.
  const c = ratiosAndTargets(result(600), { passthrough: result(1000), storeCeiling: result(0) });
  expect(c.ratios['pipeline / storeCeiling']).toBeNull();
  expect(c.ratios['pipeline / lower ceiling']).toBe(0.6);
  const d = ratiosAndTargets(result(600), { storeCeiling: result(1200) });
  expect(d.ratios['pipeline / lower ceiling']).toBe(0.5);
});

test('the lower-ceiling target is met from 0.8 up', () => {
  const at = (pipeline: number) =>
    target(
      ratiosAndTargets(result(pipeline), { passthrough: result(1000), storeCeiling: result(5000) }).targets,
      LOWER,
    );
  expect(at(800)).toEqual({ name: LOWER, wanted: '≥ 0.8', ratio: 0.8, met: true });
  expect(at(790)).toMatchObject({ ratio: 0.79, met: false });
  expect(at(1500)).toMatchObject({ ratio: 1.5, met: true });
});

test('the incumbent target is met from 10 up, the bullmq target from 4 up', () => {
  const run = (incumbent: number, bullmq: number) =>
    ratiosAndTargets(result(1000), { incumbent: result(incumbent), bullmq: result(bullmq) });
  const met = run(100, 250);
  expect(target(met.targets, INCUMBENT)).toEqual({ name: INCUMBENT, wanted: '≥ 10', ratio: 10, met: true });
  expect(target(met.targets, BULLMQ)).toEqual({ name: BULLMQ, wanted: '≥ 4', ratio: 4, met: true });
  const missed = run(105, 255);
  expect(target(missed.targets, INCUMBENT)).toMatchObject({ ratio: 9.52, met: false });
  expect(target(missed.targets, BULLMQ)).toMatchObject({ ratio: 3.92, met: false });
  expect(missed.ratios['pipeline / incumbent']).toBe(9.52);
  expect(missed.ratios['pipeline / bullmq']).toBe(3.92);
});

test('the p99 target is met up to 3 times the passthrough p99', () => {
  const at = (p99: number) => ratiosAndTargets(result(1000, p99), { passthrough: result(2000, 10) });
  expect(target(at(30).targets, P99)).toEqual({ name: P99, wanted: '≤ 3', ratio: 3, met: true });
  expect(target(at(5).targets, P99)).toMatchObject({ ratio: 0.5, met: true });
  expect(target(at(31).targets, P99)).toMatchObject({ ratio: 3.1, met: false });
  expect(at(31).ratios['p99 at half load: pipeline / passthrough']).toBe(3.1);
  // No pipeline latency measured: nothing to judge.
  const noLatency = ratiosAndTargets(result(1000, null), { passthrough: result(2000, 10) });
  expect(target(noLatency.targets, P99)).toMatchObject({ ratio: null, met: null });
});

test('a missing baseline gives a null ratio and an unjudged target', () => {
  const baselines: ScenarioResult['baselines'] = {};
  const { ratios, targets } = ratiosAndTargets(result(1000, 5, true), baselines);
  expect(Object.values(ratios).every((r) => r === null)).toBe(true);
  expect(Object.keys(ratios)).toHaveLength(10);
  for (const name of [LOWER, INCUMBENT, BULLMQ, P99])
    expect(target(targets, name)).toMatchObject({ ratio: null, met: null });
  // Only the baselines that ran are judged.
  const some = ratiosAndTargets(result(1000), { incumbent: result(100) });
  expect(target(some.targets, INCUMBENT).met).toBe(true);
  expect(target(some.targets, BULLMQ).met).toBeNull();
  expect(target(some.targets, LOWER).met).toBeNull();
});

test('exactly-once is judged against the same pipeline at-least-once: at least 0.85 of its throughput', () => {
  const EOS = 'exactly-once vs at-least-once throughput';
  const at = (eos: number) => ratiosAndTargets(result(eos, 40), { pipelineAtLeastOnce: result(1000, 20) });
  expect(target(at(850).targets, EOS)).toEqual({ name: EOS, wanted: '≥ 0.85', ratio: 0.85, met: true });
  expect(target(at(840).targets, EOS)).toMatchObject({ ratio: 0.84, met: false });
  expect(at(900).ratios['p99 at half load: exactly-once / at-least-once']).toBe(2);
  expect(target(ratiosAndTargets(result(900), {}).targets, EOS)).toMatchObject({ ratio: null, met: null });
});

test('the correctness target follows the pipeline’s correct flag', () => {
  const of = (correct: boolean | null) =>
    target(ratiosAndTargets(result(1, null, correct), {}).targets, 'pipeline correct');
  expect(of(true)).toEqual({ name: 'pipeline correct', wanted: 'true', ratio: null, met: true });
  expect(of(false).met).toBe(false);
  expect(of(null).met).toBeNull();
});

// ---------------------------------------------------------------------------------------------------
// storeWrites

const appt = (
  eventId: string,
  occurredAt: number,
  kind: AppointmentEvent['kind'],
  scheduledFor: number | null,
): AppointmentEvent => ({
  eventId,
  tenantId: 't1',
  appointmentId: 'a1',
  leadId: 'L1',
  kind,
  scheduledFor,
  occurredAt,
  source: 'test',
});
const conv = (eventId: string, occurredAt: number, amount: number | null): ConversionEvent => ({
  eventId,
  tenantId: 't1',
  leadId: 'L1',
  conversionType: 'sold',
  occurredAt,
  amount,
});

const e1 = appt('e1', 100, 'SCHEDULED', 5000);
const e2 = appt('e2', 200, 'RESCHEDULED', 9000);
const c1 = conv('c1', 300, 12.5);
const small: BenchEvent[] = [
  { flow: 'appointments', key: 'a1', value: e2, late: false, duplicate: false },
  { flow: 'appointments', key: 'a1', value: e1, late: true, duplicate: false }, // arrives after a newer one
  { flow: 'conversions', key: 'L1', value: c1, late: false, duplicate: false },
  { flow: 'conversions', key: 'L1', value: c1, late: false, duplicate: true },
];

type UpdateOne = {
  filter: { _id: string };
  update: Record<string, Record<string, unknown>>;
  upsert: boolean;
};
const updates = (ops: Map<string, unknown[]>, collection: string): UpdateOne[] =>
  (ops.get(collection) ?? []).map((op) => (op as { updateOne: UpdateOne }).updateOne);
const counts = (ops: Map<string, unknown[]>) =>
  Object.fromEntries([...ops].map(([c, list]) => [c, list.length]));

test('storeWrites makes 3 writes per appointment event and 2 per conversion event', () => {
  const ops = storeWrites(small, 1234);
  expect(counts(ops)).toEqual({
    RSAppointmentEvents: 2,
    RSAppointmentChanges: 2,
    RSAppointment: 2,
    RSLeadConversionEvents: 2,
    RSLeadGlobalConversions: 2,
  });
  for (const c of ops.keys()) for (const u of updates(ops, c)) expect(u.upsert).toBe(true);
});

test('storeWrites writes nothing for poison', () => {
  const poisoned = withPoison(small, 3, 'r');
  expect(poisoned.filter((e) => e.value === null)).toHaveLength(3);
  expect(counts(storeWrites(poisoned, 1234))).toEqual(counts(storeWrites(small, 1234)));
  expect(counts(storeWrites(withPoison([], 2, 'r'), 1))).toEqual({
    RSAppointmentEvents: 0,
    RSAppointmentChanges: 0,
    RSAppointment: 0,
    RSLeadConversionEvents: 0,
    RSLeadGlobalConversions: 0,
  });
});

test('storeWrites upserts the appointment to the fold of its events, whatever their order', () => {
  const ops = storeWrites(small, 1234);
  const apptWrites = updates(ops, 'RSAppointment');
  for (const u of apptWrites) expect(u.filter).toEqual({ _id: 'a1' });
  const last = apptWrites[apptWrites.length - 1]!.update.$set!;
  const { version, ...state } = last;
  expect(state).toEqual(fold([e1, e2]));
  expect(state).toEqual(fold([e2, e1]));
  expect(state).toMatchObject({ status: 'RESCHEDULED', scheduledFor: 9000 });
  expect(version).toBe(2);
  expect(apptWrites[0]!.update.$set).toEqual({ ...fold([e2]), version: 1 });
});

test('storeWrites archives each event by (tenant, event id) and writes one change row per event', () => {
  const ops = storeWrites(small, 1234);
  const ids = [eventKey('t1', 'e2'), eventKey('t1', 'e1')];
  expect(updates(ops, 'RSAppointmentEvents').map((u) => u.filter._id)).toEqual(ids);
  const archived = updates(ops, 'RSAppointmentEvents')[1]!.update.$setOnInsert!;
  expect(archived).toMatchObject({
    entityId: 'a1',
    tenantId: 't1',
    occurredAt: 100,
    arrivedAt: 1234,
    eventId: 'e1',
    value: e1,
  });
  const changes = updates(ops, 'RSAppointmentChanges');
  expect(changes.map((u) => u.filter._id)).toEqual(ids);
  // The late event's change row says so, and keeps the newer status.
  expect(changes[1]!.update.$set).toMatchObject({
    eventId: 'e1',
    outOfOrder: true,
    before: { status: 'RESCHEDULED', scheduledFor: 9000 },
    after: { status: 'RESCHEDULED', scheduledFor: 9000 },
  });
  expect(changes[0]!.update.$set).toMatchObject({ outOfOrder: false, before: null });
  // The conversion archive and row are keyed by (tenant, event id) and by the row id.
  expect(updates(ops, 'RSLeadConversionEvents').map((u) => u.filter._id)).toEqual(
    Array(2).fill(eventKey('t1', 'c1')),
  );
  const rows = updates(ops, 'RSLeadGlobalConversions');
  expect(rows.map((u) => u.filter._id)).toEqual(Array(2).fill(JSON.stringify(['t1', 'L1', 'sold'])));
  expect(rows[0]!.update.$set).toEqual({
    tenantId: 't1',
    leadId: 'L1',
    conversionType: 'sold',
    count: 1,
    amount: 12.5,
    firstAt: 300,
    lastAt: 300,
    updatedAt: 1234,
  });
});

// ---------------------------------------------------------------------------------------------------
// canonicalJson

test('canonicalJson ignores key order at every depth', () => {
  const a = { b: 1, a: { d: [3, 1], c: null }, e: [{ y: 2, x: 1 }] };
  const b = { e: [{ x: 1, y: 2 }], a: { c: null, d: [3, 1] }, b: 1 };
  expect(canonicalJson(a)).toBe(canonicalJson(b));
  expect(canonicalJson(a)).toBe('{"a":{"c":null,"d":[3,1]},"b":1,"e":[{"x":1,"y":2}]}');
  expect(JSON.parse(canonicalJson(a))).toEqual(a);
});

test('canonicalJson keeps array order and tells different values apart', () => {
  expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  expect(canonicalJson({ a: [{ x: 1 }, { x: 2 }] })).not.toBe(canonicalJson({ a: [{ x: 2 }, { x: 1 }] }));
  expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: '1' }));
  expect(canonicalJson({ a: null })).not.toBe(canonicalJson({}));
  expect(canonicalJson('x')).toBe('"x"');
  expect(canonicalJson(null)).toBe('null');
});

test('contestantResult says once a note an open run only repeats from the max run', () => {
  const max = measurement({ mode: 'max', throughput: 100, notes: ['16 concurrent jobs'] });
  const open = measurement({
    mode: 'open',
    offeredRate: 50,
    latency: { count: 10, p50: 1, p95: 2, p99: 3, max: 4 },
    notes: ['16 concurrent jobs', 'cut short'],
  });
  expect(contestantResult([max, open], 50).notes).toEqual(['16 concurrent jobs', '@50/s: cut short']);
});

test('medianRun keeps the run of median throughput, the lower middle one of an even count', () => {
  const runs = [300, 100, 200].map((throughput) => ({ m: measurement({ mode: 'max', throughput }) }));
  expect(medianRun(runs).m.throughput).toBe(200);
  expect(medianRun(runs.slice(0, 2)).m.throughput).toBe(100);
  expect(medianRun([runs[0]!]).m.throughput).toBe(300);
  expect(() => medianRun([])).toThrow(/no runs/);
});

test("contestantResult's peak RSS is the highest of its runs, open ones included, or null unmeasured", () => {
  const peak = contestantResult(
    [
      measurement({ rss: { startMb: 120, peakMb: 210.5 } }),
      { ...open(450, 5, 20), rss: { startMb: 200, peakMb: 240.2 } },
      open(900, 30, 300),
    ],
    450,
  );
  expect(peak.peakRssMb).toBe(240.2);
  expect(contestantResult([measurement({})], 450).peakRssMb).toBeNull();
});

test('the other Kafka client is compared with the configured one, throughput and p99 at half load', () => {
  const { ratios } = ratiosAndTargets(result(1000, 100, true), {
    pipelineOtherClient: result(1500, 80, true),
  });
  expect(ratios['other Kafka client / configured client (exactly-once throughput)']).toBe(1.5);
  expect(ratios['p99 at half load: other Kafka client / configured client']).toBe(0.8);
});
