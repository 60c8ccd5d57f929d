// `keyflow_batch_assets{status}`: BatchAssets rows per status, counted when Prometheus scrapes.
import type { Db } from 'mongodb';
import { Gauge, type Registry } from 'prom-client';
import { ASSET_STATUSES } from './schemas';
import { rowsOf } from './store';

export const BATCH_ASSETS_GAUGE = 'keyflow_batch_assets';

/** Registers the gauge once per registry; it runs one grouped count per scrape. */
export function registerBatchAssetsGauge(registry: Registry, db: Db): void {
  if (registry.getSingleMetric(BATCH_ASSETS_GAUGE)) return;
  new Gauge({
    name: BATCH_ASSETS_GAUGE,
    help: 'BatchAssets rows by status (waiting, completed, error).',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const groups = await rowsOf(db)
        .aggregate<{ _id: string; n: number }>([{ $group: { _id: '$status', n: { $sum: 1 } } }])
        .toArray();
      for (const s of ASSET_STATUSES) this.set({ status: s }, groups.find((g) => g._id === s)?.n ?? 0);
    },
  });
}
