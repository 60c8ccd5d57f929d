// The pure parts of replay: values compare after normalisation (dates as epoch ms, BSON numbers as
// numbers, absent as null), rows diff field by field with `(row)` for a missing or unexpected one, the
// shard hash is fixed and spreads ids evenly, and reports and progress read as documented.
import { Decimal128, Int32, Long, ObjectId } from 'mongodb';
import { diffRows, normalise, ROW_FIELD, rowKey, sameValue } from '../../src/replay/diff';
import { replayOrder } from '../../src/replay/engine';
import type { ReplaySummary } from '../../src/replay/full-pass';
import { pageSize } from '../../src/replay/pages';
import {
  differencesTable,
  entitySummary,
  formatDuration,
  formatValue,
  progressDetail,
  runSummary,
} from '../../src/replay/report';
import { fmix32, fnv1a32, shardOf } from '../../src/replay/shard';
import type { ReplayTable } from '../../src/replay/types';

describe('normalisation', () => {
  test('a Date equals its epoch ms, and BSON numbers equal JS numbers', () => {
    expect(sameValue(new Date(1700000000000), 1700000000000)).toBe(true);
    expect(sameValue(Long.fromNumber(42), 42)).toBe(true);
    expect(sameValue(new Int32(7), 7)).toBe(true);
    expect(sameValue(Decimal128.fromString('1.5'), 1.5)).toBe(true);
    expect(sameValue(new Date(1), new Date(2))).toBe(false);
    expect(sameValue(1, '1')).toBe(false);
  });

  test('absent equals null, nested key order does not matter, arrays keep their order', () => {
    expect(sameValue(undefined, null)).toBe(true);
    expect(sameValue({ a: 1, b: { c: new Date(5), d: null } }, { b: { c: 5 }, a: 1 })).toBe(true);
    expect(sameValue([1, 2], [2, 1])).toBe(false);
    expect(sameValue([{ at: new Date(3) }], [{ at: 3 }])).toBe(true);
    expect(sameValue(NaN, NaN)).toBe(true);
    expect(normalise({ z: 1, a: [new Date(0)] })).toEqual({ a: [0], z: 1 });
  });

  test('row identity is the string _id, or the JSON of a structured one', () => {
    const oid = new ObjectId('65a000000000000000000001');
    expect(rowKey('lead-1')).toBe('lead-1');
    expect(rowKey(oid)).toBe('65a000000000000000000001');
    expect(rowKey({ lead: 'l1', day: 3 })).toBe('{"day":3,"lead":"l1"}');
  });
});

describe('diffRows', () => {
  const fields = ['total', 'count', 'at'];
  const base = { entityId: 'e1', table: 'Totals', fields };

  test('equal rows give nothing, whatever the storage types and unrelated fields', () => {
    const expected = [{ _id: 'e1', total: 10, count: 2, at: new Date(1000) }];
    const actual = [
      { _id: 'e1', total: Long.fromNumber(10), count: 2, at: 1000, version: 9, _applied: ['x'] },
    ];
    expect(diffRows({ ...base, expected, actual })).toEqual([]);
  });

  test('each differing field is one difference with its expected and actual values', () => {
    const expected = [{ _id: 'e1', total: 10, count: 2, at: new Date(1000) }];
    const actual = [{ _id: 'e1', total: 11, count: 2 }];
    expect(diffRows({ ...base, expected, actual })).toEqual([
      { entityId: 'e1', table: 'Totals', row: 'e1', field: 'total', expected: 10, actual: 11 },
      { entityId: 'e1', table: 'Totals', row: 'e1', field: 'at', expected: new Date(1000), actual: null },
    ]);
  });

  test('a missing row and an unexpected row are `(row)` differences showing the compared fields', () => {
    const expected = [{ _id: 'a', total: 1, count: 1, at: 5 }];
    const actual = [{ _id: 'b', total: 2, count: 1, at: 6, version: 3 }];
    expect(diffRows({ ...base, expected, actual })).toEqual([
      {
        entityId: 'e1',
        table: 'Totals',
        row: 'a',
        field: ROW_FIELD,
        expected: { _id: 'a', total: 1, count: 1, at: 5 },
        actual: null,
      },
      {
        entityId: 'e1',
        table: 'Totals',
        row: 'b',
        field: ROW_FIELD,
        expected: null,
        actual: { _id: 'b', total: 2, count: 1, at: 6 },
      },
    ]);
  });
});

describe('shard hash', () => {
  test('is the documented FNV-1a + fmix32, fixed forever', () => {
    // Reference values: FNV-1a 32 of "" is its offset basis, of "a" is 0xe40c292c.
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fmix32(0)).toBe(0);
    // Pinned outputs: if these change, every checkpointed run would resume into the wrong shards.
    expect(['lead-1', 'lead-2', 'lead-3', 'x'].map((id) => fmix32(fnv1a32(id)))).toEqual([
      0x2f1b1d79, 0x730c1a76, 0x49e096fa, 0x2f5cf62c,
    ]);
    expect([shardOf('lead-1', 4), shardOf('lead-2', 4), shardOf('appt-ä', 16)]).toEqual([1, 2, 8]);
  });

  test('spreads sequential ids evenly over the shards', () => {
    for (const shards of [4, 7, 16]) {
      const counts = new Array<number>(shards).fill(0);
      const n = 40_000;
      for (let i = 0; i < n; i++) counts[shardOf(`lead-${i}`, shards)]!++;
      const mean = n / shards;
      for (const c of counts) expect(Math.abs(c - mean) / mean).toBeLessThan(0.05);
    }
  });

  test('one shard holds everything', () => {
    expect(shardOf('anything', 1)).toBe(0);
  });
});

describe('full pass page size', () => {
  test('a small range-sharded pass gets several pages per shard, so the next one is read while one is diffed', () => {
    // 2,000 entities over 4 shards: 500 each, one page of 500 would leave nothing to read ahead.
    expect(pageSize(2_000, 4, true)).toBe(64);
    expect(pageSize(4_000, 4, true)).toBe(125);
  });
  test('large passes keep pages of 500, tiny ones of 64, an unknown size 500', () => {
    expect(pageSize(1_000_000, 4, true)).toBe(500);
    expect(pageSize(10, 4, true)).toBe(64);
    expect(pageSize(null, 4, true)).toBe(500);
  });
  test('hash shards keep pages of 500: each reads every id, one query per page', () => {
    expect(pageSize(2_000, 4, false)).toBe(500);
  });
});

describe('replay order', () => {
  const t = (table: string, kind: 'derived' | 'temporal', entity = 'lead') =>
    ({ table, kind, entity }) as ReplayTable;

  test('derived tables come first, then temporal ones, filtered by entity kind', () => {
    const tables = [t('Changes', 'temporal'), t('Totals', 'derived'), t('Other', 'derived', 'appt')];
    expect(replayOrder(tables).map((x) => x.table)).toEqual(['Totals', 'Other', 'Changes']);
    expect(replayOrder(tables, 'lead').map((x) => x.table)).toEqual(['Totals', 'Changes']);
  });
});

describe('reports', () => {
  test('values are quoted strings, ISO dates or JSON, cut to the width with an ellipsis', () => {
    expect(formatValue('null')).toBe('"null"');
    expect(formatValue(null)).toBe('null');
    expect(formatValue(new Date(0))).toBe('1970-01-01T00:00:00.000Z');
    expect(formatValue({ a: 1 })).toBe('{"a":1}');
    expect(formatValue('x'.repeat(100), 10)).toBe(`"${'x'.repeat(8)}…`);
  });

  test('the differences table has the six columns, aligned', () => {
    const text = differencesTable([
      { entityId: 'e1', table: 'Totals', row: 'e1', field: 'total', expected: 10, actual: 11 },
      {
        entityId: 'e22',
        table: 'Totals',
        row: 'e22',
        field: '(row)',
        expected: { _id: 'e22' },
        actual: null,
      },
    ]);
    expect(text.split('\n')).toEqual([
      'entity  table   row  field  expected       actual',
      '------  ------  ---  -----  -------------  ------',
      'e1      Totals  e1   total  10             11',
      'e22     Totals  e22  (row)  {"_id":"e22"}  null',
    ]);
  });

  test('summaries are one line', () => {
    const line = entitySummary({
      entityId: 'e1',
      repair: true,
      tables: [{ table: 'Totals', kind: 'derived', status: 'repaired', found: 1, remaining: 0, attempts: 1 }],
      found: [{ entityId: 'e1', table: 'Totals', row: 'e1', field: 'total', expected: 1, actual: 2 }],
      differences: [],
      conflicts: [],
      durationMs: 12,
    });
    expect(line).toBe(
      'entity e1: 1 difference in 1 of 1 table, 1 repaired, 0 conflicts, 0 differences left (12ms)',
    );
    const summary: ReplaySummary = {
      runId: 'r1',
      status: 'done',
      shards: 4,
      repair: false,
      resumed: false,
      checked: 2000,
      withDifferences: 3,
      repaired: 0,
      conflicts: 0,
      remaining: 3,
      differences: 4,
      durationMs: 2500,
      checkedThisSession: 2000,
      rate: 800,
      differenceList: [],
      conflictList: [],
    };
    expect(runSummary(summary)).toBe(
      'replay run r1 done: 2000 entities checked, 3 with differences (4 differences); 2.5s, 800 entities/s',
    );
    expect(formatDuration(125_000)).toBe('2m05s');
  });
});

describe('progress', () => {
  const p = { checked: 500, total: 2000, rate: 250, withDifferences: 1, shards: 4, shardsDone: 1 };

  test('shows rate and ETA after the counts; no ETA when the total is unknown or passed', () => {
    expect(progressDetail(p)).toBe('250/s  ETA 6.0s  1 differing  shards 1/4');
    expect(progressDetail({ ...p, total: null })).toBe('250/s  1 differing  shards 1/4');
    expect(progressDetail({ ...p, checked: 2100 })).toBe('250/s  ETA ?  1 differing  shards 1/4');
  });
});
