// The full pass's shards: range cuts from one sample read, shards paged from it when it held every id,
// and groups whose tables cannot walk their ids left to hash shards.
import type { Db } from 'mongodb';
import { rangeBounds, rangePages, type Group, type Page } from '../../src/replay/pages';
import type { ReplayTable } from '../../src/replay/types';

const db = {} as Db;
const ids = Array.from({ length: 10 }, (_, i) => `id-${i}`);

/** A table whose sample and walk read `all`, counting the walks. */
function walking(all: string[], walked: { n: number }): ReplayTable {
  return {
    table: 'T',
    kind: 'derived',
    entity: 'e',
    fields: [],
    expected: async () => [],
    actual: async () => [],
    repair: async () => undefined,
    entityIds: async () => [],
    async *walkIds(_db, after, to) {
      walked.n++;
      for (const id of all)
        if ((after === undefined || id > after) && (to === undefined || id <= to)) yield id;
    },
    async sampleIds(_db, n) {
      const every = Math.max(1, Math.ceil(all.length / n));
      return { ids: all.filter((_, i) => i % every === 0), complete: every === 1 };
    },
  };
}

async function collect(pages: AsyncIterable<Page>): Promise<Page[]> {
  const out: Page[] = [];
  for await (const p of pages) out.push(p);
  return out;
}

test('a sample holding every id gives the cuts and the ids; the shards then page them without walking', async () => {
  const walked = { n: 0 };
  const group: Group = { entity: 'e', tables: [walking([...ids].reverse(), walked)] };
  const cut = await rangeBounds(db, [group], 2);
  expect(cut!.bounds).toEqual([['id-5']]);
  expect(cut!.known[0]).toEqual(ids);
  const first = await collect(rangePages(db, group, { to: 'id-5' }, 4, cut!.known[0]));
  const second = await collect(rangePages(db, group, { after: 'id-5' }, 4, cut!.known[0]));
  expect(first).toEqual([
    { ids: ['id-0', 'id-1', 'id-2', 'id-3'], exhausted: false },
    { ids: ['id-4', 'id-5'], exhausted: true },
  ]);
  expect(second).toEqual([{ ids: ['id-6', 'id-7', 'id-8', 'id-9'], exhausted: true }]);
  // A resumed shard starts past its checkpoint; an empty range is one empty, last page.
  expect(await collect(rangePages(db, group, { after: 'id-7' }, 4, cut!.known[0]))).toEqual([
    { ids: ['id-8', 'id-9'], exhausted: true },
  ]);
  expect(await collect(rangePages(db, group, { after: 'id-9' }, 4, cut!.known[0]))).toEqual([
    { ids: [], exhausted: true },
  ]);
  expect(walked.n).toBe(0);
});

test('a sample of some of the ids gives cuts only: each shard walks its range', async () => {
  const walked = { n: 0 };
  const group: Group = { entity: 'e', tables: [walking(ids, walked)] };
  const cut = await rangeBounds(db, [group], 2, 5);
  expect(cut!.known).toEqual([null]);
  const pages = await collect(rangePages(db, group, { after: cut!.bounds[0]![0] }, 10, cut!.known[0]));
  expect(walked.n).toBe(1);
  expect(pages.flatMap((p) => p.ids)[0]! > cut!.bounds[0]![0]!).toBe(true);
});

test('a group whose tables cannot walk gets no cuts (its shards hash) beside one that can', async () => {
  const walked = { n: 0 };
  const { walkIds: _w, sampleIds: _s, ...bare } = walking(ids, walked);
  const groups: Group[] = [
    { entity: 'e', tables: [walking(ids, walked)] },
    { entity: 'batch', tables: [{ ...bare, entity: 'batch' }] },
  ];
  const cut = await rangeBounds(db, groups, 2);
  expect(cut!.bounds).toEqual([['id-5'], null]);
  expect(cut!.known).toEqual([ids, null]);
  expect(await rangeBounds(db, [groups[1]!], 2)).toBeNull();
});
