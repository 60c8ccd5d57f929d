// The map a batch fold extends once per event: each view keeps what it saw, later entries stay
// invisible to older views, and extending an older view again (a branch) does not leak into the other.
import { extend, FoldMap } from '../../src/state/fold-map';

test('each view sees its own entries: the newest value of a key, none set after it', () => {
  const empty = FoldMap.of<string, number>();
  const a = empty.with('x', 1);
  const b = a.with('x', 2).with('y', 3);
  expect([empty.get('x'), a.get('x'), a.get('y'), b.get('x'), b.get('y')]).toEqual([
    undefined,
    1,
    undefined,
    2,
    3,
  ]);
});

test('extending an older view again branches: neither branch sees the other', () => {
  const base = FoldMap.of([['k', 'base']]);
  const left = base.with('l', 'left').with('k', 'left-k');
  const right = base.with('r', 'right');
  expect([left.get('l'), left.get('r'), left.get('k')]).toEqual(['left', undefined, 'left-k']);
  expect([right.get('l'), right.get('r'), right.get('k')]).toEqual([undefined, 'right', 'base']);
  // Both go on independently.
  expect(left.with('z', 'L').get('r')).toBeUndefined();
  expect(right.with('z', 'R').get('l')).toBeUndefined();
});

test('extend starts from a plain map once and leaves the map as it was', () => {
  const plain = new Map([['a', 1]]);
  const folded = extend(plain, 'b', 2);
  expect([folded.get('a'), folded.get('b')]).toEqual([1, 2]);
  expect([...plain]).toEqual([['a', 1]]);
  expect(extend(folded, 'c', 3)).toBeInstanceOf(FoldMap);
});

test('a 20,000-step fold along one line keeps every value reachable and the first view empty', () => {
  const first = FoldMap.of<number, number>();
  let m = first;
  for (let i = 0; i < 20_000; i++) m = m.with(i % 3, i).with(1000 + i, i);
  expect([m.get(0), m.get(1), m.get(2), m.get(1000), m.get(20_999)]).toEqual([
    19_998, 19_999, 19_997, 0, 19_999,
  ]);
  expect(first.get(0)).toBeUndefined();
});
