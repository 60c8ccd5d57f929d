// The fault suite's pure pieces: tables compared with the reducers' truth count every missing effect
// as lost, every extra one as a duplicate applied and every other difference as wrong; the one-line
// summary and the report table carry the figures; the suite refuses a stack it does not own.
import { generate } from '../../src/app/demo/generate';
import { groundTruth, type BenchEvent, type Truth } from '../../src/bench/events';
import {
  compareWithTruth,
  passed,
  reportTable,
  summaryLine,
  type FaultFigures,
  type TableContents,
} from '../../src/faults/figures';
import { externalSettings, refuseExternal } from '../../src/faults/rig';

function truthOf(): Truth {
  const events: BenchEvent[] = generate({
    seed: 7,
    runId: 'u',
    tenants: 2,
    appointments: 6,
    leads: 5,
    conversionsPerLead: 3,
    lateShare: 0.2,
    duplicateShare: 0.3,
    start: 1_700_000_000_000,
  }).map((p) =>
    p.topic === 'appointments'
      ? { flow: 'appointments', key: p.key, value: p.value, late: p.late, duplicate: p.duplicate }
      : { flow: 'conversions', key: p.key, value: p.value, late: p.late, duplicate: p.duplicate },
  );
  return groundTruth(events);
}

/** Tables exactly as the truth has them. */
function exact(truth: Truth): TableContents {
  return {
    appointments: new Map([...truth.appointments].map(([id, s]) => [id, structuredClone(s)])),
    changeRows: truth.changeRows,
    conversions: [...truth.conversions.values()].map((r) => ({ ...r })),
  };
}

const effects = (t: Truth) => t.changeRows + [...t.conversions.values()].reduce((n, r) => n + r.count, 0);

test('tables equal to the truth: nothing lost, doubled or wrong, every effect counted out', () => {
  const truth = truthOf();
  expect(compareWithTruth(exact(truth), truth)).toEqual({
    effectsOut: effects(truth),
    lost: 0,
    duplicates: 0,
    wrong: 0,
    wrongSamples: [],
  });
});

test('a missing change row and a conversion counted short are lost; one counted twice is a duplicate', () => {
  const truth = truthOf();
  const tables = exact(truth);
  tables.changeRows -= 1;
  tables.conversions[0]!.count -= 1;
  tables.conversions[1]!.count += 2;
  const c = compareWithTruth(tables, truth);
  expect(c.lost).toBe(2);
  expect(c.duplicates).toBe(2);
  expect(c.effectsOut).toBe(effects(truth) - 1 - 1 + 2);
});

test('a row the truth lacks is all duplicate; a missing row all lost', () => {
  const truth = truthOf();
  const tables = exact(truth);
  const gone = tables.conversions.shift()!;
  tables.conversions.push({ ...gone, conversionType: 'never-sent', count: 3 });
  const c = compareWithTruth(tables, truth);
  expect(c.lost).toBe(gone.count);
  expect(c.duplicates).toBe(3);
});

test('the right count with another state is wrong: an appointment changed, one missing, an amount off', () => {
  const truth = truthOf();
  const tables = exact(truth);
  const [first, second] = [...tables.appointments.keys()];
  tables.appointments.set(first!, { ...tables.appointments.get(first!)!, status: 'CANCELLED' } as never);
  tables.appointments.delete(second!);
  const row = tables.conversions.find((r) => r.amount !== null) ?? tables.conversions[0]!;
  row.lastAt += 1;
  const c = compareWithTruth(tables, truth);
  expect(c.wrong).toBe(3);
  expect(c.lost).toBe(0);
  expect(c.duplicates).toBe(0);
  // Each wrong entity is named, with what the table holds against the truth.
  expect(c.wrongSamples).toHaveLength(3);
  expect(c.wrongSamples[0]).toMatch(new RegExp(`^appointment ${first}: table .*CANCELLED.*, truth `));
  expect(c.wrongSamples[1]).toMatch(new RegExp(`^appointment ${second}: table null, truth `));
  expect(c.wrongSamples[2]).toMatch(/^conversion row .*: table \{"amount":.*"lastAt":/);
});

const figures = (over: Partial<FaultFigures> = {}): FaultFigures => ({
  scenario: 'broker-sigkill',
  eventsIn: 5000,
  effectsOut: 4400,
  lost: 0,
  duplicates: 0,
  wrong: 0,
  stalled: 0,
  deadLettered: 0,
  restarts: 0,
  recoverMs: 12_340,
  notes: [],
  duplicateChanges: 0,
  missingChanges: 0,
  ...over,
});

test('the summary line names every figure and passes only when all of them are zero', () => {
  expect(summaryLine(figures())).toBe(
    'broker-sigkill: PASS events in 5000, effects out 4400, duplicates applied 0, events lost 0, wrong 0, ' +
      'dead-lettered 0, stalled partitions 0, instances restarted 0, time to recover 12.3 s, ' +
      'duplicate changes 0, missing changes 0',
  );
  for (const bad of [
    { lost: 1 },
    { duplicates: 1 },
    { wrong: 1 },
    { stalled: 1 },
    { deadLettered: 1 },
    { restarts: 1 },
    { duplicateChanges: 1 },
    { missingChanges: 1 },
    // Change topics that could not be read have not been shown exact.
    { duplicateChanges: undefined, missingChanges: undefined },
  ]) {
    expect(passed(figures(bad))).toBe(false);
    expect(summaryLine(figures(bad))).toMatch(/^broker-sigkill: FAIL /);
  }
  expect(summaryLine(figures({ recoverMs: null }))).toMatch(/FAIL .*time to recover never, /);
});

test("the change topics' figures, once measured, join the summary line and the table", () => {
  const f = figures({ duplicateChanges: 312, missingChanges: 0 });
  expect(summaryLine(f)).toMatch(/, duplicate changes 312, missing changes 0$/);
  expect(reportTable([f])[2]).toMatch(/\| 312 \| 0 \|$/);
});

test('a scenario that injects bad records passes with exactly its expected dead letters and its checks held', () => {
  expect(passed(figures({ deadLettered: 301, expectedDeadLettered: 301 }))).toBe(true);
  expect(passed(figures({ deadLettered: 300, expectedDeadLettered: 301 }))).toBe(false);
  expect(passed(figures({ deadLettered: 301 }))).toBe(false);
  expect(passed(figures({ failedChecks: ['KEY_MISSING: 99, expected 100'] }))).toBe(false);
  expect(passed(figures({ failedChecks: [] }))).toBe(true);
});

test('the report table has a header, a rule and one row per scenario in order', () => {
  const lines = reportTable([
    figures(),
    figures({
      scenario: 'registry-down',
      lost: 7,
      recoverMs: null,
      duplicateChanges: undefined,
      missingChanges: undefined,
    }),
  ]);
  expect(lines).toHaveLength(4);
  expect(lines[0]).toBe(
    '| scenario | result | events in | effects out | lost | duplicates applied | wrong | dead-lettered | stalled partitions | instances restarted | time to recover | duplicate changes | missing changes |',
  );
  expect(lines[1]).toBe('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  expect(lines[2]).toBe('| broker-sigkill | pass | 5000 | 4400 | 0 | 0 | 0 | 0 | 0 | 0 | 12.3 s | 0 | 0 |');
  expect(lines[3]).toBe('| registry-down | FAIL | 5000 | 4400 | 7 | 0 | 0 | 0 | 0 | 0 | never | – | – |');
});

test('the suite refuses connection settings that point at another stack, and accepts its own or none', () => {
  const local = { KAFKA_BROKERS: '127.0.0.1:29192', MONGO_URL: 'mongodb://127.0.0.1:27127/' };
  expect(externalSettings({}, local)).toEqual([]);
  expect(externalSettings({ KAFKA_BROKERS: '127.0.0.1:29192' }, local)).toEqual([]);
  expect(externalSettings({ KAFKA_BROKERS: '127.0.0.1:29092', MONGO_URL: 'x' }, local)).toEqual([
    'KAFKA_BROKERS',
    'MONGO_URL',
  ]);
  expect(() => refuseExternal({ KAFKA_BROKERS: 'kafka:9092' }, local)).toThrow(
    /runs only on the local stack; unset KAFKA_BROKERS/,
  );
});
