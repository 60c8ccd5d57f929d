// The application's topology: the engine's own topics plus what each dataflow declares;
// `keyflow topology` prints it and `keyflow start` runs it.
import type { Config } from '../config';
import { tenantSettingsTopic } from '../settings/tenant-settings';
import { defineTopology } from '../topology/define';
import type { Topology } from '../topology/types';
import { appDataflows } from './dataflows';

export function appTopology(config?: Config): Topology {
  const flows = appDataflows(config);
  return defineTopology({
    topics: [tenantSettingsTopic(), ...flows.flatMap((f) => f.topics)],
    stages: flows.flatMap((f) => f.stages),
  });
}
