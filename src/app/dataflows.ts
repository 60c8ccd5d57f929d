// The application's dataflows, one per domain folder. Adding a domain means adding it here.
import { appointmentsFlow } from '../appointments';
import { batchesFlow } from '../batches';
import { conversionsFlow } from '../conversions';
import type { Dataflow } from '../runtime/dataflow';

export function appDataflows(): Dataflow[] {
  return [appointmentsFlow(), conversionsFlow(), batchesFlow()];
}
