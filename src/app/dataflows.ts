// The application's dataflows, one per domain folder. Adding a domain means adding it here.
import { appointmentsFlow } from '../appointments';
import { assetPolicy, batchesFlow } from '../batches';
import { conversionsFlow } from '../conversions';
import type { Config } from '../config';
import type { Dataflow } from '../runtime/dataflow';

/** With a config, the batches ingest stage fetches under its asset policy; without, under the strictest one. */
export function appDataflows(config?: Config): Dataflow[] {
  return [appointmentsFlow(), conversionsFlow(), batchesFlow({ inspect: config && assetPolicy(config) })];
}
