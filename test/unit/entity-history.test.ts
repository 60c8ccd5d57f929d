// The live stages' history write: one upsert by _id per entity, adding its archive ids (and row ids)
// and stamping touchedAt, tagged with the entity's first plan so a failure cuts that key from there.
// And `replay --since`'s time: an ISO time or an age before now.
import { sinceTime } from '../../src/cli/replay';
import { historyOps } from '../../src/state/entity-history';

test('one upsert by _id per entity, with every archive id and row id of the batch', () => {
  const now = new Date(1_800_000_000_000);
  const ops = historyOps(
    [
      { index: 4, entityId: 'lead-1', archiveId: 'a1', rowId: 'r1' },
      { index: 2, entityId: 'lead-1', archiveId: 'a2', rowId: 'r1' },
      { index: 3, entityId: 'lead-2', archiveId: 'a3' },
    ],
    now,
  );
  expect(ops).toEqual([
    {
      index: 2,
      op: {
        updateOne: {
          filter: { _id: 'lead-1' },
          update: {
            $addToSet: { events: { $each: ['a1', 'a2'] }, rows: { $each: ['r1'] } },
            $set: { entityId: 'lead-1', touchedAt: now },
          },
          upsert: true,
        },
      },
    },
    {
      index: 3,
      op: {
        updateOne: {
          filter: { _id: 'lead-2' },
          update: { $addToSet: { events: { $each: ['a3'] } }, $set: { entityId: 'lead-2', touchedAt: now } },
          upsert: true,
        },
      },
    },
  ]);
});

describe('--since', () => {
  const refuse = (m: string) => new Error(m);
  const now = Date.UTC(2026, 11, 6, 12);
  test('an age counts back from now; an ISO time is taken as is', () => {
    expect(sinceTime('90m', refuse, now).toISOString()).toBe('2026-12-06T10:30:00.000Z');
    expect(sinceTime('2d', refuse, now).toISOString()).toBe('2026-12-04T12:00:00.000Z');
    expect(sinceTime('2026-12-01T08:00Z', refuse, now).toISOString()).toBe('2026-12-01T08:00:00.000Z');
  });
  test('anything else is refused with the forms it takes', () => {
    for (const bad of ['yesterday', '10', '5w', '2026-13-45']) {
      expect(() => sinceTime(bad, refuse, now)).toThrow(/ISO time .* or an age/);
    }
  });
});
