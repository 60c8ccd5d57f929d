// The README's minimal stage: count page views per user, once per event, and emit the new total.
import { applyOnce } from '../src/state/guard';
import type { ActionStageSpec } from '../src/topology/types';

type View = { eventId: string; userId: string };
type Totals = { _id: string; views: number; _applied?: string[] };

export const countViews: ActionStageSpec<View, Totals | null, View> = {
  kind: 'action',
  name: 'count-views',
  inputs: ['page-views'],
  outputs: ['view-totals'],
  handler: {
    read: (e, ctx) => ctx.db.collection<Totals>('ViewTotals').findOne({ _id: e.key }),
    decide: (e, state) => {
      const already = state?._applied?.includes(e.eventId) ?? false; // a redelivery re-emits the same total
      const views = (state?.views ?? 0) + (already ? 0 : 1);
      return { plan: e.value, emit: [{ topic: 'view-totals', key: e.key, value: { userId: e.key, views } }] };
    },
    write: (_view, e, ctx) =>
      applyOnce(ctx.db.collection<Totals>('ViewTotals'), e.key, e.eventId, { $inc: { views: 1 } }),
  },
};
