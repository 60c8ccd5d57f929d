// Provenance over HTTP: what happened to an entity, and every delivery of one event, across stages.
import type { Db } from 'mongodb';
import { z } from 'zod';
import { byEntity, byEvent } from '../state/provenance';
import { parseInput, type RouteModule } from './server';

const id = z.string().min(1).max(512);
const entityParams = z.strictObject({ id });
const entityQuery = z.strictObject({
  stage: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
const eventParams = z.strictObject({ eventId: id });

export function provenanceRoutes(db: Db): RouteModule {
  return (app) => {
    app.get('/provenance/entities/:id', async (req) => {
      const { id: key } = parseInput(entityParams, req.params, 'params');
      const { stage, limit } = parseInput(entityQuery, req.query, 'query');
      const records = await byEntity(db, key, { stage, limit });
      return { entity: key, count: records.length, records };
    });
    app.get('/provenance/events/:eventId', async (req) => {
      const { eventId } = parseInput(eventParams, req.params, 'params');
      const records = await byEvent(db, eventId);
      return { eventId, count: records.length, records };
    });
  };
}
