// The memory run's heap-snapshot summary: self sizes summed per constructor, strings and arrays by type.
import { summariseHeapSnapshot } from '../../src/bench/heap-summary';

test('sums self sizes by constructor, and strings and arrays by their type', () => {
  const snapshot = {
    snapshot: {
      meta: {
        node_fields: ['type', 'name', 'id', 'self_size', 'edge_count'],
        node_types: [
          ['hidden', 'array', 'string', 'object', 'code', 'closure', 'native'],
          'string',
          'number',
        ],
      },
    },
    // type, name (index into strings), id, self_size, edge_count
    nodes: [
      3, 0, 1, 100, 0, 3, 0, 2, 50, 0, 3, 1, 3, 10, 0, 2, 2, 4, 30, 0, 2, 3, 5, 40, 0, 1, 4, 6, 7, 0, 6, 5, 7,
      500, 0,
    ],
    strings: ['Map', 'Object', 'some text', 'other text', '', 'system / JSArrayBufferData'],
  };
  const { totalBytes, groups } = summariseHeapSnapshot(JSON.stringify(snapshot));
  expect(totalBytes).toBe(737);
  expect(groups).toEqual([
    { name: 'system / JSArrayBufferData', count: 1, selfBytes: 500 },
    { name: 'Map', count: 2, selfBytes: 150 },
    { name: '(string)', count: 2, selfBytes: 70 },
    { name: 'Object', count: 1, selfBytes: 10 },
    { name: '(array)', count: 1, selfBytes: 7 },
  ]);
});
