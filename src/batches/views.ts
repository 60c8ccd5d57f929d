// What the API answers: the stored documents as JSON, without storage internals (`_id`, revisions).
import type { BatchAssetRow, BatchDoc, ImageDoc } from './store';

export function batchView(b: BatchDoc) {
  return {
    id: b._id,
    customerId: b.customerId,
    submitted: b.submitted.toISOString(),
    count: b.count,
    completed: b.completed,
    errors: b.errors,
    superseded: b.superseded,
    finished: b.finished?.toISOString() ?? null,
    reingestOf: b.reingestOf,
  };
}

export function rowView(r: BatchAssetRow) {
  return {
    batchId: r.batchId,
    assetId: r.assetId,
    origin: r.origin,
    status: r.status,
    error: r.error,
    finished: r.finished?.toISOString() ?? null,
    supersededBy: r.supersededBy,
  };
}

export function imageView(i: ImageDoc) {
  return {
    id: i.assetId,
    customerId: i.customerId,
    origin: i.origin,
    batch: i.batch,
    status: i.status,
    error: i.error,
    finished: i.finished?.toISOString() ?? null,
    size: i.size ?? null,
    mediaType: i.mediaType ?? null,
    width: i.width ?? null,
    height: i.height ?? null,
    created: i.created.toISOString(),
  };
}
