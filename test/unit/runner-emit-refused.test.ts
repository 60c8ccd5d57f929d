// An emitted record the broker refuses outright (too large, not authorised, no such topic), or one the
// stage cannot even build (no key), dead-letters its own event with a code that says why; the other
// events' records go out and the partition commits past them — no crash loop on the same batch.
import { KeyflowError } from '../../src/errors';
import type { ActionStageSpec } from '../../src/topology/types';
import { harness, message } from './fakes/runner';

type Ev = { id: string; seq: number; big?: boolean; keyless?: boolean };

function stage(): ActionStageSpec<Ev, null, Ev> {
  return {
    kind: 'action',
    name: 'emit',
    inputs: ['in'],
    outputs: ['out'],
    eventId: (v) => `${(v as Ev).id}#${(v as Ev).seq}`,
    handler: {
      read: async () => null,
      decide: (e) => ({
        plan: e.value,
        emit: [{ topic: 'out', key: e.value.keyless ? '' : e.key, value: e.value }],
      }),
      write: async () => 'applied',
    },
  };
}

const ev = (offset: number, v: Ev) => message(offset, v.id, v);

test('a record the broker refuses as too large dead-letters its event; the others go out and commit', async () => {
  const sent: string[] = [];
  const h = await harness(
    stage(),
    undefined,
    {},
    {
      async sendNow(records) {
        if (records.some((r) => r.topic === 'out' && JSON.parse(r.value!.toString()).big)) {
          throw new KeyflowError(
            'RECORD_TOO_LARGE',
            'sending failed: The request included a message larger than the max message size the server will accept',
          );
        }
        sent.push(...records.map((r) => `${r.topic}:${r.eventId}`));
      },
    },
  );
  await h.deliver([
    ev(0, { id: 'a', seq: 0 }),
    ev(1, { id: 'b', seq: 0, big: true }),
    ev(2, { id: 'c', seq: 0 }),
  ]);
  expect(sent.filter((s) => s.startsWith('out:'))).toEqual(['out:a#0:0', 'out:c#0:0']);
  const letters = [...h.letters.letters.values()];
  expect(letters.map((l) => [l.eventId, l.code])).toEqual([['b#0', 'RECORD_TOO_LARGE']]);
  expect(sent.filter((s) => s.startsWith('emit.dlq:'))).toEqual(['emit.dlq:b#0']);
  expect(h.commits[h.commits.length - 1]).toBe('3');
});

test('a record that cannot be built dead-letters its event with that reason', async () => {
  const h = await harness(
    stage(),
    undefined,
    {},
    {
      prepare: async (input, cause, index = 0) => {
        if (!input.key) throw new KeyflowError('KEY_MISSING', `a record for ${input.topic} has no key`);
        return {
          topic: input.topic,
          key: input.key,
          value: Buffer.from('{}'),
          headers: {},
          eventId: `${cause?.eventId}:${index}`,
        };
      },
    },
  );
  await h.deliver([ev(0, { id: 'a', seq: 0, keyless: true }), ev(1, { id: 'b', seq: 0 })]);
  expect([...h.letters.letters.values()].map((l) => [l.eventId, l.code])).toEqual([['a#0', 'KEY_MISSING']]);
  expect(h.sent.map((r) => r.topic).sort()).toEqual(['emit.dlq', 'out']);
  expect(h.commits[h.commits.length - 1]).toBe('2');
});

test('a passing send failure is not a verdict on any event: the delivery fails and nothing commits', async () => {
  const h = await harness(
    stage(),
    undefined,
    { infraRetryBudgetMs: 1_000 },
    {
      sendNow: async () => {
        throw new KeyflowError('PRODUCE_FAILED', 'broker unreachable');
      },
    },
  );
  await expect(h.deliver([ev(0, { id: 'a', seq: 0 })])).rejects.toMatchObject({ code: 'PRODUCE_FAILED' });
  expect(h.letters.letters.size).toBe(0);
  expect(h.commits).toEqual([]);
});
