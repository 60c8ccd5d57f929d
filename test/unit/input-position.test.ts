// Where an effect came from: an event's own position, or, for a re-drive, the position its letter was
// written for; and the answer for effects stored before positions were.
import { positionOf, sameRecord } from '../../src/state/input-position';

const at = (offset: string, letter?: string) => ({
  topic: 'in.v1',
  partition: 2,
  offset,
  ...(letter ? { redrive: { letter } } : {}),
});

test('an event stands at its own position; a re-drive at the offset its letter names', () => {
  expect(positionOf(at('12'))).toEqual({ topic: 'in.v1', partition: 2, offset: '12' });
  // A stage name with colons in it still parses from the end.
  expect(positionOf(at('90', 'team:a:stage:in.v1:2:12'))).toEqual({
    topic: 'in.v1',
    partition: 2,
    offset: '12',
  });
  // A letter id that names no offset leaves the re-drive at its own.
  expect(positionOf(at('90', 'odd-letter'))).toEqual({ topic: 'in.v1', partition: 2, offset: '90' });
});

test('only the same record matches; nothing stored matches every record', () => {
  const stored = { topic: 'in.v1', partition: 2, offset: '12' };
  expect(sameRecord(stored, at('12'))).toBe(true);
  expect(sameRecord(stored, at('13'))).toBe(false);
  expect(sameRecord(stored, { ...at('12'), partition: 3 })).toBe(false);
  expect(sameRecord(stored, { ...at('12'), topic: 'other' })).toBe(false);
  expect(sameRecord(stored, at('90', 'stage:in.v1:2:12'))).toBe(true);
  expect(sameRecord(undefined, at('13'))).toBe(true);
  expect(sameRecord(null, at('13'))).toBe(true);
});
