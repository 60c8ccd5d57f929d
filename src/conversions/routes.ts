// Conversions over HTTP: a lead's RSLeadGlobalConversions rows, and a tenant's totals per conversion
// type over a time range, aggregated from the event archive (so any range works, not only whole rows).
import type { Db } from 'mongodb';
import { z } from 'zod';
import { parseInput, type RouteModule } from '../api/server';
import { historyReady } from '../replay/by-history';
import { historiesOf } from '../state/entity-history';
import { ARCHIVE, archiveOf, rowsOf } from './store';

// Ids reach Mongo only as equality values; the charset also keeps `$` and dots out of them.
const id = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/,
    'must be 1 to 128 letters, digits or . _ : @ - and start with a letter or digit',
  );

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** An instant as epoch milliseconds or an ISO 8601 date / date-time with its offset. */
const instant = z.string().transform((s, ctx) => {
  if (/^\d{1,15}$/.test(s)) return Number(s);
  const t = ISO_8601.test(s) ? Date.parse(s) : NaN;
  if (Number.isFinite(t)) return t;
  ctx.addIssue({
    code: 'custom',
    message: 'must be epoch milliseconds or an ISO 8601 date (2025-01-31, 2025-01-31T09:30:00Z)',
  });
  return z.NEVER;
});

const leadParams = z.strictObject({ tenantId: id, leadId: id });
const tenantParams = z.strictObject({ tenantId: id });
const totalsQuery = z
  .strictObject({ from: instant, to: instant, type: id.optional() })
  .refine((q) => q.from < q.to, { message: 'from must be before to', path: ['to'] });

export interface TypeTotals {
  conversionType: string;
  count: number;
  amount: number;
}

/** Totals per conversion type of a tenant's distinct events with occurredAt in [from, to). */
export async function tenantTotals(
  db: Db,
  tenantId: string,
  from: number,
  to: number,
  type?: string,
): Promise<TypeTotals[]> {
  const match: Record<string, unknown> = { tenantId, occurredAt: { $gte: from, $lt: to } };
  if (type !== undefined) match['value.conversionType'] = type;
  const groups = await archiveOf(db)
    .aggregate<{ _id: string; count: number; amount: number }>([
      { $match: match },
      {
        $group: {
          _id: '$value.conversionType',
          count: { $sum: 1 },
          amount: { $sum: { $ifNull: ['$value.amount', 0] } },
        },
      },
      { $sort: { _id: 1 } },
    ])
    .toArray();
  return groups.map((g) => ({ conversionType: g._id, count: g.count, amount: g.amount }));
}

export function conversionsRoutes(db: Db): RouteModule {
  return (app) => {
    app.get('/tenants/:tenantId/leads/:leadId/conversions', async (req) => {
      const { tenantId, leadId } = parseInput(leadParams, req.params, 'params');
      const projection = {
        _id: 0,
        tenantId: 1,
        conversionType: 1,
        count: 1,
        amount: 1,
        firstAt: 1,
        lastAt: 1,
      };
      // By _id through the lead's history where it is built (every server answers that from its _id
      // index); the secondary-field query until then.
      const history = (await historyReady(db, ARCHIVE)) ? await historiesOf(db, ARCHIVE, [leadId]) : null;
      const found = history
        ? await rowsOf(db)
            .find({ _id: { $in: history.get(leadId)?.rows ?? [] } }, { projection })
            .toArray()
        : await rowsOf(db).find({ tenantId, leadId }, { projection }).toArray();
      const rows = found
        .filter((r) => r.tenantId === tenantId)
        .map(({ tenantId: _t, ...r }) => r)
        .sort((a, b) =>
          a.conversionType < b.conversionType ? -1 : a.conversionType > b.conversionType ? 1 : 0,
        );
      return { tenantId, leadId, conversions: rows };
    });

    app.get('/tenants/:tenantId/conversions/totals', async (req) => {
      const { tenantId } = parseInput(tenantParams, req.params, 'params');
      const { from, to, type } = parseInput(totalsQuery, req.query, 'query');
      const totals = await tenantTotals(db, tenantId, from, to, type);
      return { tenantId, from, to, ...(type === undefined ? {} : { type }), totals };
    });
  };
}
