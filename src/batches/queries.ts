// The indexes of the batches tables and the queries they serve (checked by test/integration/indexes.test.ts).
import type { DeclaredQuery } from '../runtime/dataflow';
import { guardIndex } from '../state/bulk';
import type { CollectionIndexes } from '../state/mongo';
import { CUSTOMER_INDEXES } from '../customers/keys';
import { COLLECTIONS } from './names';

export const BATCH_INDEXES: CollectionIndexes[] = [
  ...CUSTOMER_INDEXES,
  {
    collection: COLLECTIONS.batchAssets,
    indexes: [
      // A batch's rows (tallies by batchId alone; the listing by customer and status, sorted by asset).
      { key: { batchId: 1, customerId: 1, status: 1, assetId: 1 }, name: 'batch_customer_status_asset' },
      // Cleanup: a customer's rows of a status in given batches.
      { key: { customerId: 1, status: 1, batchId: 1 }, name: 'customer_status_batch' },
      { key: { customerId: 1, assetId: 1, batchId: 1 }, name: 'customer_asset_batch' },
      // A named query's id list: one batch's asset ids in order, paged by assetId.
      { key: { batchId: 1, customerId: 1, assetId: 1 }, name: 'batch_customer_asset' },
      // Supersede's recount of a batch's superseded rows (API path, not the fold).
      { key: { batchId: 1, supersededBy: 1 }, name: 'batch_superseded' },
      guardIndex('status', 'finished'),
      guardIndex('supersededBy'),
    ],
  },
  {
    collection: COLLECTIONS.batches,
    indexes: [{ key: { customerId: 1, finished: 1 }, name: 'customer_finished' }, guardIndex('countsRev')],
  },
  { collection: COLLECTIONS.batchSlots, indexes: [guardIndex('version')] },
  {
    collection: COLLECTIONS.images,
    indexes: [
      { key: { customerId: 1, batch: 1 }, name: 'customer_batch' },
      { key: { customerId: 1, assetId: 1 }, name: 'customer_asset' },
      // createBatch takes an image over only from an older batch: {_id, batch: {$lt}}.
      guardIndex('batch'),
    ],
  },
];

const A = COLLECTIONS.batchAssets;
export const BATCH_QUERIES: DeclaredQuery[] = [
  // The fold stage's, all by _id.
  { name: 'fold: rows by ids', hot: true, collection: A, filter: { _id: { $in: ['1:a'] } } },
  {
    name: 'fold: guarded row write',
    hot: true,
    collection: A,
    filter: { _id: '1:a', status: 'waiting', finished: null },
  },
  { name: 'fold: batches by ids', hot: true, collection: COLLECTIONS.batches, filter: { _id: { $in: [1] } } },
  { name: 'fold: batch slot list', hot: true, collection: COLLECTIONS.batches, filter: { _id: 1 } },
  {
    name: 'fold: slots by ids',
    hot: true,
    collection: COLLECTIONS.batchSlots,
    filter: { _id: { $in: ['1:0'] } },
  },
  {
    name: 'fold: guarded counter slot',
    hot: true,
    collection: COLLECTIONS.batchSlots,
    filter: { _id: '1:0', version: 3 },
  },
  {
    name: 'fold: guarded batch counts',
    hot: true,
    collection: COLLECTIONS.batches,
    filter: { _id: 1, countsRev: 3 },
  },
  {
    name: 'batch rows by status',
    collection: A,
    filter: { batchId: 1, customerId: 'c', status: 'error' },
    sort: { assetId: 1 },
  },
  { name: 'batch row tallies', collection: A, filter: { batchId: 1 } },
  {
    name: 'batches of an image',
    collection: A,
    filter: { customerId: 'c', assetId: 'a' },
    sort: { batchId: 1 },
  },
  {
    name: 'rows to supersede',
    collection: A,
    filter: { customerId: 'c', assetId: { $in: ['a'] } },
  },
  { name: 'supersede: guarded row mark', collection: A, filter: { _id: '1:a', supersededBy: null } },
  {
    name: 'supersede: count of a batch’s superseded rows',
    collection: A,
    filter: { batchId: 1, supersededBy: { $gte: 1 } },
  },
  {
    name: 'cleanup rows',
    collection: A,
    filter: { customerId: 'c', batchId: { $in: [1] }, status: 'completed' },
  },
  {
    name: 'latest batches (ops page)',
    collection: COLLECTIONS.batches,
    filter: { _id: { $in: [2, 1] } },
    sort: { _id: -1 },
  },
  { name: 'batch id counter', collection: COLLECTIONS.counters, filter: { _id: 'batch' } },
  {
    name: 'finished batches',
    collection: COLLECTIONS.batches,
    filter: { customerId: 'c', finished: { $gte: new Date(0) } },
    sort: { _id: 1 },
  },
  {
    name: 'images of a batch',
    collection: COLLECTIONS.images,
    filter: { customerId: 'c', batch: 1 },
    sort: { assetId: 1 },
  },
  {
    name: 'asset ids of batches (named query, paged)',
    collection: A,
    filter: { batchId: 1, customerId: 'c', assetId: { $gt: 'a' } },
    sort: { assetId: 1 },
  },
  {
    name: 'image taken over by a newer batch',
    collection: COLLECTIONS.images,
    filter: { _id: 'c/a', batch: { $lt: 2 } },
  },
  {
    name: 'images by named query',
    collection: COLLECTIONS.images,
    filter: { customerId: 'c', assetId: { $in: ['a'] } },
    sort: { assetId: 1 },
  },
];
