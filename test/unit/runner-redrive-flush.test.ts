// A re-driven event's letter is resolved only once its records are sent and its offset committed
// (issue 20, defect 2): resolved earlier, a flush that failed afterwards left the offset uncommitted,
// and the redelivery found the letter done and skipped the handler, so its change was never emitted.
import { KeyflowError } from '../../src/errors';
import { HEADERS } from '../../src/producers/headers';
import type { WireRecord } from '../../src/producers/types';
import type { LetterInput } from '../../src/state/dead-letters';
import type { ActionStageSpec } from '../../src/topology/types';
import { harness, message } from './fakes/runner';

const LETTER = 'count:in:0:0';

const letter: LetterInput = {
  id: LETTER,
  stage: 'count',
  key: 'a',
  eventId: 'a#0',
  topic: 'in',
  partition: 0,
  offset: '0',
  value: Buffer.from(JSON.stringify({ seq: 0 })),
  headers: {},
  code: 'HANDLER_FAILED',
  message: 'first failure',
  attempts: 5,
  firstFailedAt: 0,
  status: 'parked',
};

const redrive = () =>
  message(10, 'a', { seq: 0 }, { [HEADERS.REDRIVE_STAGE]: 'count', [HEADERS.REDRIVE_LETTER]: LETTER });

/** A stage that emits one change per event and counts its writes. */
function counting(): { spec: ActionStageSpec; applied: () => number } {
  let applied = 0;
  const spec: ActionStageSpec = {
    kind: 'action',
    name: 'count',
    inputs: ['in'],
    outputs: ['out'],
    handler: {
      read: async () => null,
      decide: (e) => ({ plan: {}, emit: [{ topic: 'out', key: e.key, value: { seq: 0 } }] }),
      write: async () => {
        applied++;
        return 'applied';
      },
    },
  };
  return { spec, applied: () => applied };
}

test('a re-drive whose records could not be sent is applied and emitted again on redelivery', async () => {
  const { spec, applied } = counting();
  let brokerDown = true;
  const sent: WireRecord[] = [];
  const sendNow = async (records: WireRecord[]) => {
    if (brokerDown) throw new KeyflowError('PRODUCE_FAILED', 'broker unreachable');
    sent.push(...records);
  };
  const h = await harness(
    spec,
    { maxAttempts: 3, baseMs: 1, maxMs: 2 },
    { infraRetryBudgetMs: 20 },
    { sendNow },
  );
  await h.letters.record([letter]);
  h.letters.mark(LETTER, 'redriven');

  // The broker stays down past the in-batch budget: the delivery fails, nothing is committed.
  await expect(h.deliver([redrive()])).rejects.toMatchObject({ code: 'PRODUCE_FAILED' });
  expect(applied()).toBe(1);
  expect(h.commits).toEqual([]);
  expect(h.letters.letters.get(LETTER)!.resolved).toBe(false);

  // The batch is fetched again once the broker is back: the event applies again (idempotent in a
  // real stage), its change record goes out, and only now, committed, is the letter resolved.
  brokerDown = false;
  await h.deliver([redrive()]);
  expect(applied()).toBe(2);
  expect(sent.map((r) => r.topic)).toEqual(['out']);
  expect(h.commits).toEqual(['11']);
  expect(h.letters.letters.get(LETTER)!.resolved).toBe(true);
  expect(h.runner.parkedKeys.has('a')).toBe(false);
});

test('at-least-once: a re-drive whose letter could not be resolved after its send is not committed, and is redone', async () => {
  const { spec, applied } = counting();
  const h = await harness(
    spec,
    { maxAttempts: 3, baseMs: 1, maxMs: 2 },
    { infraRetryBudgetMs: 20, deliveryGuarantee: 'at-least-once' },
  );
  await h.letters.record([letter]);
  h.letters.mark(LETTER, 'redriven');
  const resolve = h.letters.resolveLetter.bind(h.letters);
  h.letters.resolveLetter = () => Promise.reject(new KeyflowError('STORE_TRANSIENT', 'store unreachable'));

  await expect(h.deliver([redrive()])).rejects.toMatchObject({ code: 'STORE_TRANSIENT' });
  expect(h.commits).toEqual([]);
  expect(h.letters.letters.get(LETTER)!.resolved).toBe(false);

  h.letters.resolveLetter = resolve;
  await h.deliver([redrive()]);
  expect(applied()).toBe(2);
  expect(h.sent.filter((r) => r.topic === 'out')).toHaveLength(2);
  expect(h.commits).toEqual(['11']);
  expect(h.letters.letters.get(LETTER)!.resolved).toBe(true);
});

test('exactly-once: a re-drive is resolved only after its transaction committed; a failed resolve leaves its change out once', async () => {
  const { spec, applied } = counting();
  const h = await harness(
    spec,
    { maxAttempts: 3, baseMs: 1, maxMs: 2 },
    { infraRetryBudgetMs: 20, deliveryGuarantee: 'exactly-once' },
  );
  await h.letters.record([letter]);
  h.letters.mark(LETTER, 'redriven');
  const order: string[] = [];
  const resolve = h.letters.resolveLetter.bind(h.letters);
  h.letters.resolveLetter = () => Promise.reject(new KeyflowError('STORE_TRANSIENT', 'store unreachable'));
  const transact = async (records: WireRecord[], next: string) => {
    order.push(`transact ${records.map((r) => r.topic).join(',')} @${next}`);
    h.sent.push(...records);
    h.commits.push(next);
  };

  // The change and the offset committed together; the letter could not be resolved after that, so it
  // stays open for the stale re-drive (which then applies nothing new), and nothing is redone.
  await h.deliver([redrive()], { transact });
  expect(order).toEqual(['transact out @11']);
  expect(h.letters.letters.get(LETTER)!.resolved).toBe(false);
  expect(applied()).toBe(1);

  // With the store back, the letter resolves right after the transaction that carried its change.
  h.letters.resolveLetter = async (id) => {
    order.push('resolve');
    await resolve(id);
  };
  await h.deliver(
    [message(12, 'a', { seq: 0 }, { [HEADERS.REDRIVE_STAGE]: 'count', [HEADERS.REDRIVE_LETTER]: LETTER })],
    {
      transact,
    },
  );
  expect(order).toEqual(['transact out @11', 'transact out @13', 'resolve']);
  expect(h.letters.letters.get(LETTER)!.resolved).toBe(true);
});
