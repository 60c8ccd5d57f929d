// The batches dataflow (RFC "BatchAssets"): the API creates a batch and publishes one ingest event per
// asset; the ingest stage processes each asset and emits its outcome to the compacted batch-status; the
// fold stage compacts that into BatchAssets and recounts the batch from its rows.
import type { Config } from '../config';
import type { Dataflow } from '../runtime/dataflow';
import { compactTopic, topic } from '../topology/define';
import { scheduleCleanup, type CleanupSchedule } from './cleanup';
import { foldStage } from './fold-stage';
import { ingestStage } from './ingest-stage';
import { inspectOrigin, type AssetHandler, type InspectOptions } from './inspect';
import { registerBatchAssetsGauge } from './metrics';
import { flowNames } from './names';
import { BATCH_INDEXES, BATCH_QUERIES } from './queries';
import { batchCountsReplay } from './replay';
import { batchRoutes } from './routes';
import { batchStatusSchema, ingestEventSchema } from './schemas';

export interface BatchesFlowOptions {
  /** Prefixes topic and stage names (tests). */
  prefix?: string;
  /** Partitions of both topics (default 6). */
  partitions?: number;
  /**
   * Partitions of batch-status alone, once it has more than the ingest topic (default `partitions`).
   * Its count may grow while batches are open: the fold's counter slots are per partition and a row
   * whose records land on two partitions is still counted once (fold-stage.ts).
   */
  statusPartitions?: number;
  /** The asset processing; default: inspectOrigin(inspect). */
  handler?: AssetHandler;
  inspect?: InspectOptions;
  /** The scheduled BatchAssets cleanup; none unless given. */
  cleanup?: CleanupSchedule;
}

export function batchesFlow(opts: BatchesFlowOptions = {}): Dataflow {
  const names = flowNames(opts.prefix);
  const partitions = opts.partitions ?? 6;
  const handler = opts.handler ?? inspectOrigin(opts.inspect);
  return {
    name: 'batches',
    topics: [
      topic(names.ingestTopic, { partitions, key: 'assetId', value: ingestEventSchema }),
      compactTopic(names.statusTopic, {
        partitions: opts.statusPartitions ?? partitions,
        key: 'batchId:assetId',
        value: batchStatusSchema,
      }),
    ],
    stages: [ingestStage(names, handler), foldStage(names)],
    indexes: BATCH_INDEXES,
    queries: BATCH_QUERIES,
    // Batches counts are kept from transitions live; replay recounts them from the rows.
    replay: [batchCountsReplay],
    routes(ctx) {
      const gauge = registerBatchAssetsGauge(ctx.metrics, ctx.db, { log: ctx.log });
      const routes = batchRoutes({ db: ctx.db, producer: ctx.producer, names });
      return (app) => {
        routes(app);
        app.addHook('onClose', async () => gauge?.stop());
        const schedule = opts.cleanup ?? {
          strategy: ctx.config.batchCleanupStrategy,
          days: ctx.config.batchCleanupDays,
          intervalMs: ctx.config.batchCleanupIntervalMs,
        };
        const scheduled = scheduleCleanup(ctx.db, schedule, ctx.log);
        app.addHook('onClose', async () => scheduled.stop());
      };
    },
  };
}

/** The asset policy from the settings (README "Asset origins"). */
export function assetPolicy(config: Config): InspectOptions {
  return {
    fileRoot: config.assetFileRoot,
    allowHosts: config.assetAllowHosts,
    allowAddresses: config.assetAllowAddresses,
    timeoutMs: config.assetFetchTimeoutMs,
    maxBytes: config.assetMaxBytes,
  };
}

export { flowNames } from './names';
export type { AssetHandler, AssetFacts } from './inspect';
