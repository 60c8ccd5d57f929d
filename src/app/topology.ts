// The application's topology: the engine's own topics plus what each domain declares. Domains add
// their topics and stages here; `keyflow topology` prints it and `keyflow start` runs it.
import { tenantSettingsTopic } from '../settings/tenant-settings';
import { defineTopology } from '../topology/define';
import type { Topology } from '../topology/types';

export function appTopology(): Topology {
  return defineTopology({
    topics: [tenantSettingsTopic()],
    stages: [],
  });
}
