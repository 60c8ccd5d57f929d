// The batches dataflow's values: the two topics' Avro + zod pairs, and the zod schemas of every path,
// query and body value the API accepts (strict objects, so an unknown or operator-shaped key is refused).
import { z } from 'zod';
import type { ValueSchema } from '../topology/types';

const NAMESPACE = 'keyflow.batches';

export const ASSET_STATUSES = ['waiting', 'completed', 'error'] as const;
export type AssetStatus = (typeof ASSET_STATUSES)[number];

/** Ids are plain tokens: no `$`, no `.`-only names, no separators we use in keys (`:` and `/`). */
export const customerIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"');
export const assetIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/, 'must be 1-200 letters, digits, ".", "_" or "-"');
export const batchIdSchema = z.coerce
  .number({ error: 'must be a batch id (a positive whole number)' })
  .int('must be a whole number')
  .positive('must be positive')
  .max(Number.MAX_SAFE_INTEGER);
export const statusSchema = z.enum(ASSET_STATUSES);
export const originSchema = z
  .string()
  .max(2048)
  .regex(/^(file|https?):\/\/.+/, 'must be a file://, http:// or https:// URL');

export const ingestEvent = z.object({
  batchId: z.number().int().positive(),
  customerId: z.string().min(1),
  assetId: z.string().min(1),
  origin: z.string().min(1),
});
export type IngestEvent = z.infer<typeof ingestEvent>;

export const ingestEventSchema: ValueSchema<IngestEvent> = {
  avro: {
    type: 'record',
    name: 'AssetIngest',
    namespace: NAMESPACE,
    fields: [
      { name: 'batchId', type: 'long' },
      { name: 'customerId', type: 'string' },
      { name: 'assetId', type: 'string' },
      { name: 'origin', type: 'string' },
    ],
  },
  zod: ingestEvent,
};

export const batchStatus = z.object({
  batchId: z.number().int().positive(),
  customerId: z.string().min(1),
  assetId: z.string().min(1),
  status: statusSchema,
  error: z.string().nullable(),
  /** Epoch ms when the asset finished; null while waiting. */
  finished: z.number().int().nullable(),
});
export type BatchStatus = z.infer<typeof batchStatus>;

export const batchStatusSchema: ValueSchema<BatchStatus> = {
  avro: {
    type: 'record',
    name: 'BatchAssetStatus',
    namespace: NAMESPACE,
    fields: [
      { name: 'batchId', type: 'long' },
      { name: 'customerId', type: 'string' },
      { name: 'assetId', type: 'string' },
      { name: 'status', type: 'string', doc: 'waiting | completed | error' },
      { name: 'error', type: ['null', 'string'], default: null },
      { name: 'finished', type: ['null', { type: 'long', logicalType: 'timestamp-millis' }], default: null },
    ],
  },
  zod: batchStatus,
};

// ---- API input ----

export const MAX_ASSETS_PER_BATCH = 10_000;

export const createBatchBody = z.strictObject({
  assets: z
    .array(z.strictObject({ id: assetIdSchema, origin: originSchema }))
    .min(1, 'give at least one asset')
    .max(MAX_ASSETS_PER_BATCH, `at most ${MAX_ASSETS_PER_BATCH} assets per batch`)
    .refine((a) => new Set(a.map((x) => x.id)).size === a.length, 'asset ids must be unique in a batch'),
});
export type CreateBatchBody = z.infer<typeof createBatchBody>;

export const customerParams = z.strictObject({ customerId: customerIdSchema });
export const batchParams = z.strictObject({ customerId: customerIdSchema, batchId: batchIdSchema });
export const imageParams = z.strictObject({ customerId: customerIdSchema, imageId: assetIdSchema });

const pageFields = {
  page: z.coerce.number().int().min(1).max(1_000_000).default(1),
  pageSize: z.coerce.number().int().min(1).max(1000).default(100),
};
export const pageQuery = z.strictObject(pageFields);
export const assetsQuery = z.strictObject({ ...pageFields, status: statusSchema.optional() });

export const CLEANUP_STRATEGIES = ['completed', 'older-than', 'superseded'] as const;
export type CleanupStrategy = (typeof CLEANUP_STRATEGIES)[number];

export const cleanupBody = z
  .strictObject({
    strategy: z.enum(CLEANUP_STRATEGIES),
    days: z.number().int().min(0).max(36_500).optional(),
    dryRun: z.boolean().default(false),
  })
  .refine((b) => b.strategy !== 'older-than' || b.days !== undefined, {
    message: 'strategy "older-than" needs "days"',
    path: ['days'],
  });
export type CleanupRequest = z.infer<typeof cleanupBody>;

export const namedQueryName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"');
export const namedQueryParams = z.strictObject({ customerId: customerIdSchema, name: namedQueryName });
export const namedQueryBody = z.strictObject({ template: z.string().min(1).max(1000) });
