// The README's minimal stage: count page views per user, once per event, and emit the new total. A
// batch stage: one read of every user a fetch touches, a pure fold per user, one guarded write each.
import { byIds, writeGuarded, type GuardedWrite } from '../src/state/bulk';
import type { BatchStageSpec } from '../src/topology/types';

type View = { eventId: string; userId: string };
/** `recent`: the last 64 event ids counted, so a redelivery is recognised; `version` guards the write. */
type Totals = { _id: string; views: number; recent: string[]; version: number };

export const countViews: BatchStageSpec<View, Totals, Totals> = {
  kind: 'batch',
  name: 'count-views',
  inputs: ['page-views'],
  outputs: ['view-totals'],
  handler: {
    async read(events, ctx) {
      const docs = await byIds(
        ctx.db.collection<Totals>('ViewTotals'),
        events.map((e) => e.key),
      );
      const fresh = (id: string): Totals => ({ _id: id, views: 0, recent: [], version: 0 });
      return new Map(events.map((e) => [e.key, docs.get(e.key) ?? fresh(e.key)]));
    },
    decide(e, t) {
      const seen = t.recent.includes(e.eventId); // a redelivery re-emits the same total
      const next = seen ? t : { ...t, views: t.views + 1, recent: [...t.recent, e.eventId].slice(-64) };
      const emit = [{ topic: 'view-totals', key: e.key, value: { userId: e.key, views: next.views } }];
      return { plan: seen ? null : next, state: next, emit, outcome: seen ? 'duplicate' : 'applied' };
    },
    async write(plans, ctx) {
      // One write per user, with the total its last event left, guarded on the version read; a
      // failure is reported against the user's first plan, so all of the user's events retry.
      const first = new Map<string, number>();
      const last = new Map<string, Totals>();
      for (const p of plans) {
        if (!first.has(p.event.key)) first.set(p.event.key, p.index);
        last.set(p.event.key, p.plan);
      }
      const writes: GuardedWrite<Totals>[] = [...last].map(([id, t]) =>
        t.version === 0
          ? { index: first.get(id)!, _id: id, insert: { ...t, version: 1 } }
          : {
              index: first.get(id)!,
              _id: id,
              guard: { version: t.version },
              update: { $set: { views: t.views, recent: t.recent }, $inc: { version: 1 } },
            },
      );
      return { failed: await writeGuarded(ctx.db.collection<Totals>('ViewTotals'), writes, 'view totals') };
    },
  },
};
