// keyflow_lanes_busy covers batch stages too: a batch stage folds its keys into one unit of work, so
// it reports one busy lane on the partition while a batch runs and none once it is done. Without it
// the dashboard's "Key lanes busy" panel is empty for every stage the app runs (all batch stages).
import { EVENTS } from '../../src/instrumentation';
import type { BatchStageSpec } from '../../src/topology/types';
import { harness, message } from './fakes/runner';

type Ev = { id: string };

test('a batch stage reports one busy lane while its batch runs and none after', async () => {
  const busy: number[] = [];
  let duringRead: number | undefined;
  const stage: BatchStageSpec<Ev, { n: number }, { key: string }> = {
    kind: 'batch',
    name: 'fold',
    inputs: ['in'],
    outputs: [],
    eventId: (v) => (v as Ev).id,
    handler: {
      async read(events) {
        duringRead = busy[busy.length - 1];
        return new Map(events.map((e) => [e.key, { n: 0 }]));
      },
      decide: (e, s) => ({ plan: { key: e.key }, emit: [], state: { n: s.n + 1 } }),
      async write() {
        return { failed: [] };
      },
    },
  };
  const h = await harness(stage);
  h.instrumentation.on(EVENTS.LANES_BUSY, (l) => {
    expect(l).toMatchObject({ stage: 'fold', partition: 0 });
    busy.push(l.busy);
  });
  await h.deliver([message(0, 'a', { id: 'a1' }), message(1, 'b', { id: 'b1' })]);
  expect(duringRead).toBe(1);
  expect(busy[busy.length - 1]).toBe(0);
  expect(h.commits).toEqual(['2']);
  await h.runner.stop();
});
