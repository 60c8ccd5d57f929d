// Replay over HTTP, for one entity at a time: GET reports its differences, POST .../repair fixes them.
// Full passes are long and resumable, so they belong to `keyflow replay --all`, not to a request.
import type { Db } from 'mongodb';
import { z } from 'zod';
import { replayEntity } from '../replay/engine';
import type { ReplayTable } from '../replay/types';
import { parseInput, type RouteModule } from './server';

const params = z.strictObject({ entityId: z.string().min(1).max(512) });
const query = z.strictObject({ entity: z.string().min(1).max(200).optional() });

export function replayRoutes(db: Db, tables: readonly ReplayTable[]): RouteModule {
  return (app) => {
    app.get('/replay/:entityId', async (req) => {
      const { entityId } = parseInput(params, req.params, 'params');
      const { entity } = parseInput(query, req.query, 'query');
      return replayEntity(db, tables, entityId, { entity, repair: false });
    });
    app.post('/replay/:entityId/repair', async (req) => {
      const { entityId } = parseInput(params, req.params, 'params');
      const { entity } = parseInput(query, req.query, 'query');
      return replayEntity(db, tables, entityId, { entity, repair: true });
    });
  };
}
