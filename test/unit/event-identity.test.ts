// An event's identity within its tenant, and the content check that tells a duplicate from a reused id.
import { KeyflowError } from '../../src/errors';
import { differingFields, eventIdReused, eventKey, refuseReusedId } from '../../src/state/event-identity';

test('event keys scope the id by tenant and cannot be confused whatever the ids contain', () => {
  expect(eventKey('t1', 'e1')).not.toBe(eventKey('t2', 'e1'));
  expect(eventKey('a:b', 'c')).not.toBe(eventKey('a', 'b:c'));
  expect(eventKey('a","b', 'c')).not.toBe(eventKey('a', 'b","c'));
  expect(eventKey('t1', 'e1')).toBe(eventKey('t1', 'e1'));
});

test('differing fields lists exactly the listed fields whose values differ, in order', () => {
  const stored = { id: 'x', amount: 10, type: 'sold', at: 1, note: null as string | null };
  expect(differingFields(stored, { ...stored }, ['amount', 'type', 'at', 'note'])).toEqual([]);
  expect(differingFields(stored, { ...stored, at: 2, amount: 10.5 }, ['amount', 'type', 'at'])).toEqual([
    { field: 'amount', stored: 10, got: 10.5 },
    { field: 'at', stored: 1, got: 2 },
  ]);
  // A field not listed (transport detail) is not compared.
  expect(differingFields(stored, { ...stored, id: 'y' }, ['amount'])).toEqual([]);
  // null against a number differs; null against absent does not.
  expect(differingFields(stored, { ...stored, note: 'hi' }, ['note'])).toHaveLength(1);
  const a: { v?: number | null } = { v: null };
  expect(differingFields(a, {}, ['v'])).toEqual([]);
  expect(differingFields({ v: 0 }, { v: null } as { v: number | null }, ['v'])).toHaveLength(1);
});

test('a reused id is a non-retriable EVENT_ID_REUSED that names every differing field', () => {
  const err = eventIdReused('acme', 'e7', [
    { field: 'amount', stored: 1, got: 2 },
    { field: 'kind', stored: 'A', got: 'B' },
  ]);
  expect(err).toBeInstanceOf(KeyflowError);
  expect(err).toMatchObject({ code: 'EVENT_ID_REUSED', retriable: false });
  expect(err.message).toMatch(/e7 of tenant acme/);
  expect(err.message).toMatch(/amount \(first 1, now 2\), kind \(first "A", now "B"\) differ/);
  expect(() => refuseReusedId('acme', 'e7', { n: 1 }, { n: 1 }, ['n'])).not.toThrow();
  expect(() => refuseReusedId('acme', 'e7', { n: 1 }, { n: 2 }, ['n'])).toThrow(/n \(first 1, now 2\)/);
});
