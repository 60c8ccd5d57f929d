// Key lanes: one key strictly in order, different keys concurrently up to the bound, and the
// committable offset never passes an unfinished event.
import { groupByKey, OffsetTracker, runLanes } from '../../src/consumers/lanes';

const msgs = [
  { key: 'a', offset: '10' },
  { key: 'b', offset: '11' },
  { key: 'a', offset: '12' },
  { key: 'c', offset: '13' },
  { key: 'b', offset: '14' },
];

test('groupByKey keeps each key’s order and orders lanes by first appearance', () => {
  expect(groupByKey(msgs, (m) => m.key).map((l) => l.map((m) => m.offset))).toEqual([
    ['10', '12'],
    ['11', '14'],
    ['13'],
  ]);
});

test('the committable offset is the end of the completed prefix, gaps allowed', () => {
  const t = new OffsetTracker(['10', '11', '13', '14']); // 12 compacted away
  expect(t.committable()).toBeUndefined();
  t.complete('11');
  expect(t.committable()).toBeUndefined(); // 10 still running
  t.complete('10');
  expect(t.committable()).toBe('11');
  expect(t.takeCommittable()).toEqual(['10', '11']);
  t.complete('14');
  expect(t.committable()).toBe('11');
  t.complete('13');
  expect(t.committable()).toBe('14');
  expect(t.takeCommittable()).toEqual(['13', '14']);
  expect(t.takeCommittable()).toEqual([]);
  expect(t.allDone).toBe(true);
});

test('offsets beyond 2^53 compare exactly', () => {
  const t = new OffsetTracker(['9007199254740993', '9007199254740992']);
  t.complete('9007199254740992');
  expect(t.committable()).toBe('9007199254740992');
});

const tick = () => new Promise((r) => setTimeout(r, 5));

test('a slow key does not hold the others, and a key never runs two events at once', async () => {
  const lanes = groupByKey(
    [
      { key: 'slow', n: 1 },
      { key: 'slow', n: 2 },
      { key: 'x', n: 3 },
      { key: 'y', n: 4 },
      { key: 'x', n: 5 },
    ],
    (m) => m.key,
  );
  const running = new Map<string, number>();
  const finished: number[] = [];
  let maxConcurrent = 0;
  await runLanes(lanes, 2, async (m) => {
    running.set(m.key, (running.get(m.key) ?? 0) + 1);
    expect(running.get(m.key)).toBe(1);
    maxConcurrent = Math.max(
      maxConcurrent,
      [...running.values()].reduce((a, b) => a + b, 0),
    );
    for (let i = 0; i < (m.key === 'slow' ? 10 : 1); i++) await tick();
    running.set(m.key, running.get(m.key)! - 1);
    finished.push(m.n);
  });
  expect(maxConcurrent).toBe(2);
  // x and y finish while the slow key is still on its first event.
  expect(finished.indexOf(3)).toBeLessThan(finished.indexOf(1));
  expect(finished.indexOf(5)).toBeLessThan(finished.indexOf(1));
  // Per key, order holds.
  expect(finished.indexOf(1)).toBeLessThan(finished.indexOf(2));
  expect(finished.indexOf(3)).toBeLessThan(finished.indexOf(5));
});

test('a failing item stops the lanes and the error comes out after in-flight items settle', async () => {
  const lanes = [[1, 2], [3], [4]];
  const done: number[] = [];
  await expect(
    runLanes(lanes, 2, async (n) => {
      await tick();
      if (n === 3) throw new Error('boom');
      done.push(n);
    }),
  ).rejects.toThrow('boom');
  expect(done).not.toContain(4);
});

test('when asked to stop, lanes take no further item', async () => {
  let go = true;
  const done: number[] = [];
  await runLanes(
    [[1, 2, 3]],
    1,
    async (n) => {
      done.push(n);
      if (n === 1) go = false;
    },
    () => go,
  );
  expect(done).toEqual([1]);
});
