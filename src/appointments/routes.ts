// Appointments over HTTP: one appointment with its change history, and a tenant's out-of-order
// changes in a time range. Every input is parsed by zod first, so only plain strings and numbers reach Mongo.
import type { Db } from 'mongodb';
import { z } from 'zod';
import { parseInput, type ErrorBody, type RouteModule } from '../api/server';
import { historyReady } from '../replay/by-history';
import { historiesOf } from '../state/entity-history';
import { APPOINTMENT_EVENTS, appointments, changes } from './tables';

/** History rows returned with an appointment; a lifecycle has a handful, this only bounds a runaway one. */
const HISTORY_LIMIT = 1000;

const id = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9._:@-]+$/, 'may only contain letters, digits, ".", "_", ":", "@" and "-"');

const appointmentParams = z.strictObject({ tenantId: id, appointmentId: id });
const tenantParams = z.strictObject({ tenantId: id });
const epochMs = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const outOfOrderQuery = z
  .strictObject({
    from: epochMs.default(0),
    to: epochMs.default(Number.MAX_SAFE_INTEGER),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .refine((q) => q.from < q.to, {
    message: 'from must be before to (epoch ms, to exclusive)',
    path: ['from'],
  });

export function appointmentRoutes(db: Db): RouteModule {
  return (app) => {
    app.get('/tenants/:tenantId/appointments/:appointmentId', async (req, reply) => {
      const { tenantId, appointmentId } = parseInput(appointmentParams, req.params, 'params');
      // Another tenant's appointment answers exactly like a missing one: ids do not leak across tenants.
      const appointment = await appointments(db).findOne({ _id: appointmentId, tenantId });
      if (!appointment) {
        const body: ErrorBody = {
          error: { code: 'NOT_FOUND', message: `tenant ${tenantId} has no appointment ${appointmentId}` },
        };
        return reply.status(404).send(body);
      }
      // By _id through the appointment's history where it is built (a change row's _id is its event's
      // archive id); the secondary-field query until then.
      const listed = (await historyReady(db, APPOINTMENT_EVENTS))
        ? ((await historiesOf(db, APPOINTMENT_EVENTS, [appointmentId])).get(appointmentId)?.events ?? [])
        : null;
      const history = listed
        ? (
            await changes(db)
              .find({ _id: { $in: listed } })
              .toArray()
          )
            .filter((c) => c.appointmentId === appointmentId)
            .sort(
              (a, b) =>
                a.occurredAt - b.occurredAt || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0),
            )
            .slice(0, HISTORY_LIMIT)
        : await changes(db)
            .find({ appointmentId })
            .sort({ occurredAt: 1, eventId: 1 })
            .limit(HISTORY_LIMIT)
            .toArray();
      return { appointment, history };
    });

    app.get('/tenants/:tenantId/out-of-order', async (req) => {
      const { tenantId } = parseInput(tenantParams, req.params, 'params');
      const { from, to, limit } = parseInput(outOfOrderQuery, req.query, 'query');
      const filter = { tenantId, outOfOrder: true, occurredAt: { $gte: from, $lt: to } };
      const [count, rows] = await Promise.all([
        changes(db).countDocuments(filter),
        changes(db).find(filter).sort({ occurredAt: 1, eventId: 1 }).limit(limit).toArray(),
      ]);
      return { tenantId, from, to, count, changes: rows };
    });
  };
}
