// `keyflow_batch_assets{status}`: BatchAssets rows per status. A scrape only reads counts refreshed in the
// background (one grouped count per interval, never overlapping, time-bounded), so a Prometheus scrape
// never waits on, or multiplies, a full-collection aggregation.
import type { Db } from 'mongodb';
import { Gauge, type Registry } from 'prom-client';
import { classify } from '../errors';
import type { Logger } from '../logger';
import { ASSET_STATUSES } from './schemas';
import { rowsOf } from './store';

export const BATCH_ASSETS_GAUGE = 'keyflow_batch_assets';

export interface BatchGaugeOptions {
  /** How often the counts are refreshed (default 15 s, the usual scrape interval). */
  intervalMs?: number;
  log?: Logger;
}

export interface BatchAssetsGauge {
  /** Recounts now (the timer calls it); resolves when done, never rejects. */
  refresh(): Promise<void>;
  /** Stops the timer; safe twice. */
  stop(): void;
}

/** Registers the gauge once per registry and starts its refresh; undefined when it was registered already. */
export function registerBatchAssetsGauge(
  registry: Registry,
  db: Db,
  opts: BatchGaugeOptions = {},
): BatchAssetsGauge | undefined {
  if (registry.getSingleMetric(BATCH_ASSETS_GAUGE)) return undefined;
  const intervalMs = opts.intervalMs ?? 15_000;
  let counts: Map<string, number> | undefined;
  let running: Promise<void> | undefined;

  new Gauge({
    name: BATCH_ASSETS_GAUGE,
    help: 'BatchAssets rows by status (waiting, completed, error), refreshed in the background.',
    labelNames: ['status'] as const,
    registers: [registry],
    collect() {
      // Until the first count is in, the series stay absent rather than reading 0.
      if (!counts) return;
      for (const s of ASSET_STATUSES) this.set({ status: s }, counts.get(s) ?? 0);
    },
  });

  const recount = async () => {
    try {
      const groups = await rowsOf(db)
        .aggregate<{ _id: string; n: number }>([{ $group: { _id: '$status', n: { $sum: 1 } } }], {
          maxTimeMS: Math.max(1000, intervalMs),
        })
        .toArray();
      counts = new Map(groups.map((g) => [g._id, g.n]));
    } catch (err) {
      const e = classify(err);
      opts.log?.warn({ err: e, code: e.code }, 'batch-asset gauge refresh failed; keeping the last counts');
    }
  };
  const refresh = () => (running ??= recount().finally(() => (running = undefined)));
  const timer = setInterval(() => void refresh(), intervalMs);
  timer.unref();
  void refresh();
  return {
    refresh,
    stop: () => clearInterval(timer),
  };
}
