// The one pager: pages follow the cursor, stop at a short or empty page, and never read past `limit`.
import { pages } from '../../src/state/pages';

const items = Array.from({ length: 7 }, (_, i) => i);

async function walk(pageSize: number, limit?: number) {
  const reads: [number | undefined, number][] = [];
  const read = async (after: number | undefined, size: number) => {
    reads.push([after, size]);
    return items.filter((i) => after === undefined || i > after).slice(0, size);
  };
  const out: number[][] = [];
  for await (const page of pages(read, { pageSize, cursor: (last) => last, limit })) out.push(page);
  return { out, reads };
}

test('pages follow the cursor and stop at the first short page', async () => {
  const { out, reads } = await walk(3);
  expect(out).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
  expect(reads).toEqual([
    [undefined, 3],
    [2, 3],
    [5, 3],
  ]);
});

test('a full last page costs one empty read; a limit cuts the last page to fit', async () => {
  expect((await walk(7)).reads).toHaveLength(2);
  const { out, reads } = await walk(3, 5);
  expect(out).toEqual([
    [0, 1, 2],
    [3, 4],
  ]);
  expect(reads[1]).toEqual([2, 2]);
});
