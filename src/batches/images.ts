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
/** The id list is read from BatchAssets in pages of this many rows, in asset order, never in one go. */
const ID_PAGE = 1000;

export interface IdListLimits {
  maxAssets?: number;
  idPage?: number;
}

/**
 * The distinct asset ids in any of the batches, in asset order, read page by page along the
 * customer_asset_batch index; refuses (QUERY_TOO_BROAD) as soon as the list would pass the cap.
 */
export async function assetIdsOfBatches(
  db: Db,
  customerId: string,
  batchIds: number[],
  limits: IdListLimits = {},
): Promise<string[]> {
  const max = limits.maxAssets ?? NAMED_QUERY_MAX_ASSETS;
  const pageSize = limits.idPage ?? ID_PAGE;
  const ids: string[] = [];
  for (;;) {
    const after = ids.length > 0 ? ids[ids.length - 1]! : '';
    const rows = await rowsOf(db)
      .find(
        { customerId, batchId: { $in: batchIds }, assetId: { $gt: after } },
        { projection: { _id: 0, assetId: 1 } },
      )
      .sort({ assetId: 1 })
      .limit(pageSize)
      .toArray();
    for (const r of rows) {
      if (r.assetId === ids[ids.length - 1]) continue; // the same asset in another of the batches
      if (ids.length === max) {
        throw new KeyflowError(
          'QUERY_TOO_BROAD',
          `the batches of this query hold more than ${max} assets; name fewer batches`,
          { retriable: false },
        );
      }
      ids.push(r.assetId);
    }
    if (rows.length < pageSize) return ids;
  }
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
