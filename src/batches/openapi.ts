// The OpenAPI document of the customer API, built from the same zod schemas the routes validate with.
import { z } from 'zod';
import { assetsQuery, cleanupBody, createBatchBody, namedQueryBody, pageQuery } from './schemas';

const json = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });

function queryParams(schema: z.ZodObject) {
  const props = (json(schema) as { properties?: Record<string, unknown> }).properties ?? {};
  return Object.entries(props).map(([name, s]) => ({ name, in: 'query', required: false, schema: s }));
}

const pathParam = (
  name: string,
  description: string,
  schema: Record<string, unknown> = { type: 'string' },
) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema,
});

const customer = pathParam('customerId', 'the customer id (letters, digits, "_", "-")');
const batch = pathParam('batchId', 'a batch id', { type: 'integer', minimum: 1 });
const ok = (description: string) => ({ description, content: { 'application/json': {} } });
const refusals = {
  400: { description: 'invalid input; the message names the field' },
  401: { description: 'no or unknown API key' },
  403: { description: 'the key belongs to another customer' },
  404: { description: 'no such resource for this customer' },
};
const body = (schema: z.ZodType) => ({
  required: true,
  content: { 'application/json': { schema: json(schema) } },
});

export function openApiDocument(): Record<string, unknown> {
  const base = '/customers/{customerId}';
  return {
    openapi: '3.1.0',
    info: { title: 'Keyflow batches API', version: '1' },
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
    security: [{ apiKey: [] }],
    paths: {
      [`${base}/queue/batches`]: {
        post: {
          summary: 'create a batch and ingest its assets',
          parameters: [customer],
          requestBody: body(createBatchBody),
          responses: { 201: ok('the batch'), ...refusals },
        },
      },
      [`${base}/queue/batches/{batchId}`]: {
        get: {
          summary: 'a batch with counts derived from its assets',
          parameters: [customer, batch],
          responses: { 200: ok('the batch'), ...refusals },
        },
      },
      [`${base}/queue/batches/{batchId}/images`]: {
        get: {
          summary: 'images whose current batch is this one',
          parameters: [customer, batch, ...queryParams(pageQuery)],
          responses: { 200: ok('{items, page, pageSize, total}'), ...refusals },
        },
      },
      [`${base}/queue/batches/{batchId}/assets`]: {
        get: {
          summary: 'every asset ever in the batch, with its status in this batch',
          parameters: [customer, batch, ...queryParams(assetsQuery)],
          responses: { 200: ok('{items, page, pageSize, total}'), ...refusals },
        },
      },
      [`${base}/queue/batches/{batchId}/reingest`]: {
        post: {
          summary: 'reingest the failed assets of the batch as a new batch',
          parameters: [customer, batch],
          responses: {
            201: ok('the new batch'),
            409: { description: 'the batch has no failed assets' },
            ...refusals,
          },
        },
      },
      [`${base}/queue/batch-assets/cleanup`]: {
        post: {
          summary: 'remove BatchAssets rows of finished batches by strategy (or report them with dryRun)',
          parameters: [customer],
          requestBody: body(cleanupBody),
          responses: { 200: ok('{strategy, days, dryRun, matched, removed, rows}'), ...refusals },
        },
      },
      [`${base}/images/{imageId}/batches`]: {
        get: {
          summary: 'the batches an image was ingested in, with its status in each',
          parameters: [customer, pathParam('imageId', 'the asset id')],
          responses: { 200: ok('{items}'), ...refusals },
        },
      },
      [`${base}/named-queries/{name}`]: {
        put: {
          summary:
            'store a template mapping path arguments onto filters, e.g. "batch=p1&mediaType=image/png"',
          parameters: [customer, pathParam('name', 'the query name')],
          requestBody: body(namedQueryBody),
          responses: { 200: ok('{name, template, arity}'), ...refusals },
        },
      },
      [`${base}/named-queries/{name}/{args}`]: {
        get: {
          summary: 'images matching the named query; args are path elements, a batch argument may be "1,2,3"',
          parameters: [
            customer,
            pathParam('name', 'the query name'),
            pathParam('args', 'p1/p2/...'),
            ...queryParams(pageQuery),
          ],
          responses: { 200: ok('{items, page, pageSize, total}'), ...refusals },
        },
      },
    },
  };
}
