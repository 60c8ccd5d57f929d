// An event whose state was written but whose emitted record never left (the broker refused it, so its
// dead letter settled its offset instead) re-sends the stored record when its letter is re-driven: the
// envelope marks the re-drive (`event.redrive`) and positionOf makes it stand for the letter's record.
// An upstream re-send of the same event, at any other offset, sends nothing.
import { KeyflowError } from '../../src/errors';
import { HEADERS } from '../../src/producers/headers';
import { positionOf, sameRecord, type InputPosition } from '../../src/state/input-position';
import type { ActionStageSpec } from '../../src/topology/types';
import { harness, message } from './fakes/runner';

type Ev = { id: string; n: number };
type Stored = { n: number; total: number; input: InputPosition };

/** A stage that keeps each event's effect with the record that made it, in memory. */
function stage(
  store: Map<string, Stored>,
  totals: Map<string, number>,
): ActionStageSpec<Ev, Stored | null, Stored> {
  return {
    kind: 'action',
    name: 'sum',
    inputs: ['in'],
    outputs: ['out'],
    eventId: (v) => (v as Ev).id,
    handler: {
      read: async (e) => store.get(e.value.id) ?? null,
      decide(e, stored) {
        const out = (s: Stored) => ({ topic: 'out', key: e.key, value: { total: s.total } });
        if (stored) return { plan: null, emit: sameRecord(stored.input, e) ? [out(stored)] : [] };
        const next = { n: e.value.n, total: (totals.get(e.key) ?? 0) + e.value.n, input: positionOf(e) };
        return { plan: next, emit: [out(next)] };
      },
      async write(plan, e) {
        store.set(e.value.id, plan);
        totals.set(e.key, plan.total);
        return 'applied';
      },
    },
  };
}

test('the re-drive of a letter whose record the broker refused re-sends the stored record; a re-send does not', async () => {
  const store = new Map<string, Stored>();
  const totals = new Map<string, number>();
  let refuse = true;
  const sent: { topic: string; value: string }[] = [];
  const h = await harness(
    stage(store, totals),
    undefined,
    {},
    {
      async sendNow(records) {
        if (refuse && records.some((r) => r.topic === 'out')) {
          throw new KeyflowError('RECORD_TOO_LARGE', 'the broker refused the record');
        }
        sent.push(...records.map((r) => ({ topic: r.topic, value: r.value!.toString() })));
      },
    },
  );
  const value = { id: 'e1', n: 5 };
  await h.deliver([message(0, 'k', value)]);
  // The effect is written; its record went to the dead-letter topic in its place.
  expect(store.get('e1')).toMatchObject({ total: 5, input: { topic: 'in', partition: 0, offset: '0' } });
  const [letter] = [...h.letters.letters.values()];
  expect(letter).toMatchObject({ code: 'RECORD_TOO_LARGE', offset: '0' });
  expect(sent.filter((r) => r.topic === 'out')).toEqual([]);

  // The operator raises the topic's limit, and `keyflow dlq replay` sends the letter back as a new
  // record, at offset 3; the same event re-sent upstream follows at offset 4.
  refuse = false;
  const redrive = { [HEADERS.REDRIVE_STAGE]: 'sum', [HEADERS.REDRIVE_LETTER]: letter!.id };
  await h.deliver([message(3, 'k', value, redrive), message(4, 'k', value)]);
  expect(sent.filter((r) => r.topic === 'out')).toEqual([
    { topic: 'out', value: JSON.stringify({ total: 5 }) },
  ]);
  expect(h.letters.letters.get(letter!.id)?.resolved).toBe(true);
  expect(totals.get('k')).toBe(5);
});
