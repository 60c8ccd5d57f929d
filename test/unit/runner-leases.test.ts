// With entity locking on, the runner holds each key's lease as its lane (instance, stage, topic,
// partition), renews it while a slow handler runs, hands the handler the lease's fencing token, and
// releases it afterwards. Before, the owner was instance + stage only, and a lease was never renewed.
import type { ActionStageSpec } from '../../src/topology/types';
import { harness, message } from './fakes/runner';

type Ev = { id: string };

test('a lease is held per lane, renewed while the handler runs, fenced, and released', async () => {
  const calls: { op: 'acquire' | 'release'; key: string; owner: string }[] = [];
  const fences: (number | undefined)[] = [];
  let renewed!: () => void;
  const renewal = new Promise<void>((r) => (renewed = r));
  const spec: ActionStageSpec<Ev, null, Ev> = {
    kind: 'action',
    name: 'locked',
    inputs: ['in'],
    outputs: [],
    handler: {
      read: async () => null,
      decide: (e) => ({ plan: e.value, emit: [] }),
      async write(_plan, e, ctx) {
        fences.push(ctx.fence?.(e.key));
        await renewal; // a handler slower than a third of the lease: it must be renewed meanwhile
        return 'applied';
      },
    },
  };
  const h = await harness(
    spec,
    undefined,
    { leaseTtlMs: 30 },
    {},
    {
      runtime: () => ({ entityLocking: 'lease' }),
      leases: {
        async acquire(key, owner) {
          calls.push({ op: 'acquire', key, owner });
          if (calls.filter((c) => c.op === 'acquire').length === 2) renewed();
          return 7;
        },
        async release(key, owner) {
          calls.push({ op: 'release', key, owner });
        },
      },
    },
  );
  await h.deliver([message(0, 'a', { id: 'a' })]);
  expect(fences).toEqual([7]);
  expect(new Set(calls.map((c) => c.owner))).toEqual(new Set(['test:locked:in:0']));
  expect(calls.filter((c) => c.op === 'acquire').length).toBeGreaterThanOrEqual(2);
  expect(calls[calls.length - 1]).toEqual({ op: 'release', key: 'a', owner: 'test:locked:in:0' });
});
