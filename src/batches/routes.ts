// The customer API of batches: create and inspect batches, list their assets, reingest failures, named
// queries and BatchAssets cleanup. Every route sits behind the customer's API key (customers/auth.ts),
// and every path, query and body value goes through a strict zod schema before anything is touched.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from 'mongodb';
import { parseInput, type RouteModule } from '../api/server';
import { customerAuth } from '../customers/auth';
import { KeyflowError } from '../errors';
import type { KeyedProducer } from '../producers/producer';
import { cleanupBatchAssets } from './cleanup';
import { imagesMatching, imagesOfCurrentBatch } from './images';
import { resolveTemplate } from './named-queries';
import { getNamedQuery, putNamedQuery } from './named-query-store';
import type { FlowNames } from './names';
import { openApiDocument } from './openapi';
import {
  assetsQuery,
  batchParams,
  cleanupBody,
  createBatchBody,
  customerIdSchema,
  customerParams,
  imageParams,
  namedQueryBody,
  namedQueryName,
  namedQueryParams,
  pageQuery,
  type IngestEvent,
} from './schemas';
import {
  createBatch,
  failedAssets,
  findBatch,
  listRows,
  rowsOfImage,
  type BatchDoc,
  type NewAsset,
} from './store';
import { batchView, imageView, rowView } from './views';
import { z } from 'zod';

export interface BatchRouteDeps {
  db: Db;
  producer: Pick<KeyedProducer, 'publish'>;
  names: FlowNames;
  now?: () => number;
}

/** Codes only this module answers with; everything else goes on to the server's error handler. */
const DOMAIN_STATUS: Record<string, number> = {
  NOT_FOUND: 404,
  NOTHING_TO_REINGEST: 409,
  QUERY_TOO_BROAD: 400,
};
const PUBLISH_CHUNK = 500;

function domainErrors(err: FastifyError | KeyflowError, _req: FastifyRequest, reply: FastifyReply) {
  const status = err instanceof KeyflowError ? DOMAIN_STATUS[err.code] : undefined;
  if (status === undefined) throw err;
  return reply.status(status).send({ error: { code: err.code, message: err.message } });
}

function notFound(what: string): KeyflowError {
  return new KeyflowError('NOT_FOUND', `${what} was not found`, { retriable: false });
}

const namedQueryRunParams = z.strictObject({
  customerId: customerIdSchema,
  name: namedQueryName,
  '*': z.string().max(2000),
});

export function batchRoutes(deps: BatchRouteDeps): RouteModule {
  const { db, names } = deps;
  const now = () => new Date(deps.now?.() ?? Date.now());

  async function ingest(
    customerId: string,
    assets: NewAsset[],
    reingestOf: number | null,
  ): Promise<BatchDoc> {
    const batch = await createBatch(db, customerId, assets, now(), reingestOf);
    for (let i = 0; i < assets.length; i += PUBLISH_CHUNK) {
      await deps.producer.publish(
        assets.slice(i, i + PUBLISH_CHUNK).map((a) => {
          const value: IngestEvent = { batchId: batch._id, customerId, assetId: a.id, origin: a.origin };
          return { topic: names.ingestTopic, key: a.id, value, eventId: `ingest:${batch._id}:${a.id}` };
        }),
      );
    }
    return batch;
  }

  async function customerRoutes(app: FastifyInstance) {
    app.setErrorHandler(domainErrors);
    app.addHook('onRequest', customerAuth(db));

    app.post('/customers/:customerId/queue/batches', async (req, reply) => {
      const { customerId } = parseInput(customerParams, req.params, 'params');
      const body = parseInput(createBatchBody, req.body, 'body');
      const batch = await ingest(customerId, body.assets, null);
      return reply.status(201).send(batchView(batch));
    });

    app.get('/customers/:customerId/queue/batches/:batchId', async (req) => {
      const p = parseInput(batchParams, req.params, 'params');
      const batch = await findBatch(db, p.customerId, p.batchId);
      if (!batch) throw notFound(`batch ${p.batchId}`);
      return batchView(batch);
    });

    app.get('/customers/:customerId/queue/batches/:batchId/images', async (req) => {
      const p = parseInput(batchParams, req.params, 'params');
      const q = parseInput(pageQuery, req.query, 'query');
      if (!(await findBatch(db, p.customerId, p.batchId))) throw notFound(`batch ${p.batchId}`);
      const page = await imagesOfCurrentBatch(db, p.customerId, p.batchId, q.page, q.pageSize);
      return { ...page, items: page.items.map(imageView) };
    });

    app.get('/customers/:customerId/queue/batches/:batchId/assets', async (req) => {
      const p = parseInput(batchParams, req.params, 'params');
      const q = parseInput(assetsQuery, req.query, 'query');
      if (!(await findBatch(db, p.customerId, p.batchId))) throw notFound(`batch ${p.batchId}`);
      const { items, total } = await listRows(db, p.customerId, p.batchId, q.status, q.page, q.pageSize);
      return { items: items.map(rowView), page: q.page, pageSize: q.pageSize, total };
    });

    app.post('/customers/:customerId/queue/batches/:batchId/reingest', async (req, reply) => {
      const p = parseInput(batchParams, req.params, 'params');
      if (!(await findBatch(db, p.customerId, p.batchId))) throw notFound(`batch ${p.batchId}`);
      const failed = await failedAssets(db, p.customerId, p.batchId);
      if (failed.length === 0) {
        throw new KeyflowError('NOTHING_TO_REINGEST', `batch ${p.batchId} has no failed assets`, {
          retriable: false,
        });
      }
      const batch = await ingest(p.customerId, failed, p.batchId);
      return reply.status(201).send(batchView(batch));
    });

    app.get('/customers/:customerId/images/:imageId/batches', async (req) => {
      const p = parseInput(imageParams, req.params, 'params');
      const rows = await rowsOfImage(db, p.customerId, p.imageId);
      if (rows.length === 0) throw notFound(`image ${p.imageId}`);
      return { items: rows.map(rowView) };
    });

    app.post('/customers/:customerId/queue/batch-assets/cleanup', async (req) => {
      const { customerId } = parseInput(customerParams, req.params, 'params');
      const body = parseInput(cleanupBody, req.body, 'body');
      return cleanupBatchAssets(db, { ...body, customerId, now: now().getTime() });
    });

    app.put('/customers/:customerId/named-queries/:name', async (req) => {
      const p = parseInput(namedQueryParams, req.params, 'params');
      const body = parseInput(namedQueryBody, req.body, 'body');
      const parsed = await putNamedQuery(db, p.customerId, p.name, body.template, now());
      return { name: p.name, template: body.template, arity: parsed.arity };
    });

    const runNamedQuery = async (req: FastifyRequest, args: string[], customerId: string, name: string) => {
      const q = parseInput(pageQuery, req.query, 'query');
      const parsed = await getNamedQuery(db, customerId, name);
      if (!parsed) throw notFound(`named query ${name}`);
      const page = await imagesMatching(db, customerId, resolveTemplate(parsed, args), q.page, q.pageSize);
      return { ...page, items: page.items.map(imageView) };
    };
    app.get('/customers/:customerId/named-queries/:name', async (req) => {
      const p = parseInput(namedQueryParams, req.params, 'params');
      return runNamedQuery(req, [], p.customerId, p.name);
    });
    app.get('/customers/:customerId/named-queries/:name/*', async (req) => {
      const p = parseInput(namedQueryRunParams, req.params, 'params');
      return runNamedQuery(req, p['*'].split('/'), p.customerId, p.name);
    });
  }

  return (app) => {
    const doc = openApiDocument();
    app.get('/openapi/batches.json', async () => doc);
    void app.register(customerRoutes);
  };
}
