// Image listings: by current batch (the v1 `/images` endpoint) and by named-query filter, where a batch
// filter means "was in any of these batches" (BatchAssets), not only the current one.
import type { Db, Filter } from 'mongodb';
import { KeyflowError } from '../errors';
import type { ImageFilter } from './named-queries';
import { imagesOf, rowsOf, type ImageDoc } from './store';

export interface Page<T> {
  items: T[];
  page: number;
  pageSize: number;
  total: number;
}

async function pageOf(
  db: Db,
  filter: Filter<ImageDoc>,
  page: number,
  pageSize: number,
): Promise<Page<ImageDoc>> {
  const [items, total] = await Promise.all([
    imagesOf(db)
      .find(filter)
      .sort({ assetId: 1 })
      .skip((page - 1) * pageSize)
      .limit(pageSize)
      .toArray(),
    imagesOf(db).countDocuments(filter),
  ]);
  return { items, page, pageSize, total };
}

export function imagesOfCurrentBatch(
  db: Db,
  customerId: string,
  batchId: number,
  page: number,
  pageSize: number,
): Promise<Page<ImageDoc>> {
  return pageOf(db, { customerId, batch: batchId }, page, pageSize);
}

/** How many distinct assets the batches of one named-query call may hold; more is a 400 (name fewer batches). */
export const NAMED_QUERY_MAX_ASSETS = 10_000;
/** Each batch's ids are read from BatchAssets in pages of this many rows, in asset order, never in one go. */
const ID_PAGE = 1000;

export interface IdListLimits {
  maxAssets?: number;
  idPage?: number;
}

/**
 * The distinct asset ids in any of the batches, in asset order: each batch's ids are read page by page
 * along batch_customer_asset (keyset on assetId), and the list is refused (QUERY_TOO_BROAD) as soon as
 * it would pass the cap, so neither memory nor the images query that follows grows without bound.
 */
export async function assetIdsOfBatches(
  db: Db,
  customerId: string,
  batchIds: number[],
  limits: IdListLimits = {},
): Promise<string[]> {
  const max = limits.maxAssets ?? NAMED_QUERY_MAX_ASSETS;
  const pageSize = limits.idPage ?? ID_PAGE;
  const ids = new Set<string>();
  for (const batchId of batchIds) {
    let after = '';
    for (;;) {
      const rows = await rowsOf(db)
        .find({ batchId, customerId, assetId: { $gt: after } }, { projection: { _id: 0, assetId: 1 } })
        .sort({ assetId: 1 })
        .limit(pageSize)
        .toArray();
      for (const r of rows) {
        ids.add(r.assetId);
        if (ids.size > max) {
          throw new KeyflowError(
            'QUERY_TOO_BROAD',
            `the batches of this query hold more than ${max} assets; name fewer batches`,
            { retriable: false },
          );
        }
      }
      if (rows.length < pageSize) break;
      after = rows[rows.length - 1]!.assetId;
    }
  }
  return [...ids].sort();
}

export async function imagesMatching(
  db: Db,
  customerId: string,
  filter: ImageFilter,
  page: number,
  pageSize: number,
  limits: IdListLimits = {},
): Promise<Page<ImageDoc>> {
  const query: Filter<ImageDoc> = { customerId };
  if (filter.mediaType) query.mediaType = filter.mediaType;
  if (filter.status) query.status = filter.status;
  if (filter.batchIds)
    query.assetId = { $in: await assetIdsOfBatches(db, customerId, filter.batchIds, limits) };
  return pageOf(db, query, page, pageSize);
}
