// The application's topology: the engine's own topics plus what each domain declares. Domains add
// their topics and stages here; `keyflow topology` prints it and `keyflow start` runs it.
import { z } from 'zod';
import { compactTopic, defineTopology } from '../topology/define';
import type { TopicSpec, Topology } from '../topology/types';

export const tenantSettingsValue = z.object({
  tenantId: z.string().min(1),
  /** The tenant's settings as JSON text; parsed and checked where they are used. */
  settings: z.string(),
});
export type TenantSettingsValue = z.infer<typeof tenantSettingsValue>;

/**
 * Per-tenant settings, latest per tenant: compacted so a fresh instance rebuilds them by reading the
 * topic from the start. One partition, because every instance reads all of it anyway.
 */
export const tenantSettingsTopic: TopicSpec<TenantSettingsValue> = compactTopic('tenant-settings', {
  partitions: 1,
  key: 'tenantId',
  value: {
    avro: {
      type: 'record',
      name: 'TenantSettings',
      namespace: 'keyflow.engine',
      fields: [
        { name: 'tenantId', type: 'string' },
        { name: 'settings', type: 'string', doc: 'JSON text' },
      ],
    },
    zod: tenantSettingsValue,
  },
});

export function appTopology(): Topology {
  return defineTopology({
    topics: [tenantSettingsTopic],
    stages: [],
  });
}
