// Image listings: by current batch (the v1 `/images` endpoint) and by named-query filter, where a batch
// filter means "was in any of these batches" (BatchAssets), not only the current one.
import type { Db, Filter } from 'mongodb';
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

export async function imagesMatching(
  db: Db,
  customerId: string,
  filter: ImageFilter,
  page: number,
  pageSize: number,
): Promise<Page<ImageDoc>> {
  const query: Filter<ImageDoc> = { customerId };
  if (filter.mediaType) query.mediaType = filter.mediaType;
  if (filter.status) query.status = filter.status;
  if (filter.batchIds) {
    const assetIds = (await rowsOf(db).distinct('assetId', {
      customerId,
      batchId: { $in: filter.batchIds },
    })) as string[];
    query.assetId = { $in: assetIds };
  }
  return pageOf(db, query, page, pageSize);
}
