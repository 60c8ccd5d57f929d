// The fault suite's "groups settled" test: both stage groups Stable with the expected member count, and
// every member holding partitions (a member that joined but got none yet does not count as settled).
import { settledAt } from '../../src/faults/membership';
import type { GroupState } from '../../src/kafka/types';

const g = (state: string, assigned: number[]): GroupState => ({ state, members: assigned.length, assigned });

test('settled only when every named group is Stable with that many members, each assigned', () => {
  const names = ['a', 'b'];
  expect(
    settledAt(
      new Map([
        ['a', g('Stable', [3, 3])],
        ['b', g('Stable', [2, 4])],
      ]),
      names,
      2,
    ),
  ).toBe(true);
  expect(
    settledAt(
      new Map([
        ['a', g('Stable', [3, 3])],
        ['b', g('Reconciling', [2, 4])],
      ]),
      names,
      2,
    ),
  ).toBe(false);
  expect(
    settledAt(
      new Map([
        ['a', g('Stable', [6, 0])],
        ['b', g('Stable', [3, 3])],
      ]),
      names,
      2,
    ),
  ).toBe(false);
  expect(
    settledAt(
      new Map([
        ['a', g('Stable', [6])],
        ['b', g('Stable', [6])],
      ]),
      names,
      2,
    ),
  ).toBe(false);
  expect(settledAt(new Map([['a', g('Stable', [3, 3])]]), names, 2)).toBe(false);
  expect(
    settledAt(
      new Map([
        ['a', { state: 'Stable', members: 2, assigned: [] }],
        ['b', g('Stable', [3, 3])],
      ]),
      names,
      2,
    ),
  ).toBe(false);
});
