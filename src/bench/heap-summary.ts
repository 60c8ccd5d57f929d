// A V8 heap snapshot (.heapsnapshot, as --heapsnapshot-signal writes it) summed by what holds the bytes:
// objects by constructor name, strings, arrays, compiled code and the engine's own by their type.
export interface HeapGroup {
  name: string;
  count: number;
  selfBytes: number;
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Node types summed by their type alone: their names are the values (each string's text), not kinds. */
const BY_TYPE: Record<string, string> = {
  string: '(string)',
  'concatenated string': '(string)',
  'sliced string': '(string)',
  array: '(array)',
  code: '(compiled code)',
  hidden: '(system)',
  number: '(number)',
  bigint: '(bigint)',
  'object shape': '(object shape)',
  regexp: '(regexp)',
  symbol: '(symbol)',
};

export function summariseHeapSnapshot(json: string): { totalBytes: number; groups: HeapGroup[] } {
  const s = JSON.parse(json) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const groups = new Map<string, HeapGroup>();
  let totalBytes = 0;
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt]!] ?? 'unknown';
    const size = s.nodes[i + sizeAt]!;
    totalBytes += size;
    const name = BY_TYPE[type] ?? (s.strings[s.nodes[i + nameAt]!] || `(${type})`);
    const g = groups.get(name) ?? { name, count: 0, selfBytes: 0 };
    g.count++;
    g.selfBytes += size;
    groups.set(name, g);
  }
  return { totalBytes, groups: [...groups.values()].sort((a, b) => b.selfBytes - a.selfBytes) };
}
