// The application's topology: the engine's own topics plus what each dataflow declares;
// `keyflow topology` prints it and `keyflow start` runs it.
import { tenantSettingsTopic } from '../settings/tenant-settings';
import { defineTopology } from '../topology/define';
import type { Topology } from '../topology/types';
import { appDataflows } from './dataflows';

export function appTopology(): Topology {
  const flows = appDataflows();
  return defineTopology({
    topics: [tenantSettingsTopic(), ...flows.flatMap((f) => f.topics)],
    stages: flows.flatMap((f) => f.stages),
  });
}
