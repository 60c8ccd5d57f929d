// The sample traffic generator: reproducible, with the late and duplicate shares it promises, and
// late events really arriving after a newer event of their entity.
import { generate, type Published } from '../../src/app/demo/generate';

const opts = {
  seed: 7,
  runId: 'r1',
  tenants: 3,
  appointments: 200,
  leads: 150,
  conversionsPerLead: 4,
  lateShare: 0.1,
  duplicateShare: 0.05,
  start: Date.UTC(2026, 0, 1),
};

test('the same seed gives the same traffic; another seed differs', () => {
  expect(generate(opts)).toEqual(generate(opts));
  expect(generate({ ...opts, seed: 8 })).not.toEqual(generate(opts));
});

test('duplicates re-send an earlier event id later in the stream', () => {
  const events = generate(opts);
  const dups = events.filter((e) => e.duplicate);
  expect(dups.length).toBeGreaterThan(0);
  for (const d of dups) {
    const first = events.findIndex((e) => e.value.eventId === d.value.eventId);
    expect(events.indexOf(d)).toBeGreaterThan(first + 1);
    expect(events[first]!.duplicate).toBe(false);
  }
  const distinct = new Set(events.map((e) => e.value.eventId)).size;
  expect(events.length - distinct).toBe(dups.length);
});

test('a late event arrives after a newer event of the same entity', () => {
  const events = generate(opts).filter((e) => !e.duplicate);
  const late = events.filter((e) => e.late);
  expect(late.length).toBeGreaterThan(10);
  const newestSeen = new Map<string, number>();
  let lateSeenAfterNewer = 0;
  for (const e of events as Published[]) {
    const prev = newestSeen.get(e.key) ?? -Infinity;
    if (e.value.occurredAt < prev) {
      lateSeenAfterNewer++;
      expect(e.late).toBe(true);
    }
    newestSeen.set(e.key, Math.max(prev, e.value.occurredAt));
  }
  expect(lateSeenAfterNewer).toBe(late.length);
});
