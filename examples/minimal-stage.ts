// The README's minimal stage: count page views per user, once per event, and emit the new total. A
// batch stage: one read of every user a fetch touches, a pure fold per user, one guarded write each.
import { byIds, writeGuarded, type GuardedWrite } from '../src/state/bulk';
import { positionOf, sameRecord, type InputPosition } from '../src/state/input-position';
import type { BatchStageSpec } from '../src/topology/types';

type View = { eventId: string; userId: string };
/** The last 64 events counted: the total each emitted and the input record that counted it. */
type Counted = { eventId: string; views: number; input: InputPosition };
type Totals = { _id: string; views: number; recent: Counted[]; version: number };

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
      const out = (views: number) => ({ topic: 'view-totals', key: e.key, value: { userId: e.key, views } });
      const seen = t.recent.find((c) => c.eventId === e.eventId);
      if (seen) {
        // Counted: its own record, come again, re-sends the stored total; any other copy sends nothing.
        const emit = sameRecord(seen.input, e) ? [out(seen.views)] : [];
        return { plan: null, state: t, emit, outcome: 'duplicate' };
      }
      const counted = { eventId: e.eventId, views: t.views + 1, input: positionOf(e) };
      const next = { ...t, views: counted.views, recent: [...t.recent, counted].slice(-64) };
      return { plan: next, state: next, emit: [out(counted.views)] };
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
