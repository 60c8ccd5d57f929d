// Names of the batches dataflow: its topics, stages and collections. A prefix keeps a test's topics apart.

export const COLLECTIONS = {
  batches: 'Batches',
  batchAssets: 'BatchAssets',
  batchSlots: 'BatchSlots',
  images: 'Images',
  ingestResults: 'BatchIngestResults',
  namedQueries: 'NamedQueries',
  counters: 'Counters',
} as const;

export interface FlowNames {
  ingestTopic: string;
  statusTopic: string;
  ingestStage: string;
  foldStage: string;
}

export function flowNames(prefix = ''): FlowNames {
  const p = prefix ? `${prefix}.` : '';
  return {
    ingestTopic: `${p}assets.ingest.v1`,
    statusTopic: `${p}batch-status`,
    ingestStage: `${p}batches.ingest`,
    foldStage: `${p}batches.fold`,
  };
}

/** The batch-status key: one compacted record per asset per batch. */
export function statusKey(batchId: number, assetId: string): string {
  return `${batchId}:${assetId}`;
}

/** Images belong to a customer; the same asset id under two customers is two images. */
export function imageId(customerId: string, assetId: string): string {
  return `${customerId}/${assetId}`;
}
