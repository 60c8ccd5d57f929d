// Under KIP-848 (group.protocol=consumer) the group coordinator, not the member, decides how long a
// silent member keeps its partitions: the member sends no session timeout, and the coordinator uses the
// group's configs `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`, 45 s and 5 s
// unless the group or the brokers (group.consumer.*) say otherwise. So a member sets them on its group
// from Keyflow's own settings before it joins; otherwise a SIGKILLed processor's partitions waited 45 s
// for their next owner whatever KEYFLOW_SESSION_TIMEOUT_MS said.
import { Admin, ConfigResourceTypes, IncrementalAlterConfigOperationTypes } from '@platformatic/kafka';
import type { Logger } from '../logger';
import type { PlatformaticBase } from './platformatic-options';

export interface GroupTimeouts {
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
}

/** The group configs for `t`: what IncrementalAlterConfigs sets on the group. */
export function groupTimeoutConfigs(t: GroupTimeouts): { name: string; value: string }[] {
  const configs: { name: string; value: string }[] = [];
  if (t.sessionTimeoutMs !== undefined)
    configs.push({ name: 'consumer.session.timeout.ms', value: String(t.sessionTimeoutMs) });
  if (t.heartbeatIntervalMs !== undefined)
    configs.push({ name: 'consumer.heartbeat.interval.ms', value: String(t.heartbeatIntervalMs) });
  return configs;
}

/**
 * Sets `t` on group `groupId`. A broker that refuses (a value outside its group.consumer.min/max
 * bounds, no ALTER_CONFIGS right on the group, a broker before group configs) leaves the group on the
 * broker's values: that is logged once, with what to change, and the member joins anyway.
 */
export async function setGroupTimeouts(
  base: PlatformaticBase,
  groupId: string,
  t: GroupTimeouts,
  log?: Logger,
): Promise<boolean> {
  const configs = groupTimeoutConfigs(t);
  if (configs.length === 0) return true;
  const admin = new Admin({ ...base, clientId: `${base.clientId}-group-config` });
  try {
    await admin.incrementalAlterConfigs({
      resources: [
        {
          resourceType: ConfigResourceTypes.GROUP,
          resourceName: groupId,
          configs: configs.map((c) => ({ ...c, configOperation: IncrementalAlterConfigOperationTypes.SET })),
        },
      ],
    });
    return true;
  } catch (err) {
    log?.warn(
      { groupId, configs, reason: describe(err) },
      'the broker refused the consumer group its session timeout and heartbeat interval; under ' +
        'KIP-848 the group keeps the broker defaults (group.consumer.session.timeout.ms, 45 s unless ' +
        'changed), so a dead member keeps its partitions that long: allow the values on the brokers ' +
        '(group.consumer.min.session.timeout.ms, group.consumer.min.heartbeat.interval.ms) or set ' +
        'KEYFLOW_KAFKA_GROUP_PROTOCOL=classic',
    );
    return false;
  } finally {
    await admin.close().catch(() => undefined);
  }
}

function describe(err: unknown): string {
  const e = err as { message?: string; errors?: { message?: string }[] };
  const inner = e.errors?.map((x) => x.message).filter(Boolean) ?? [];
  return [e.message ?? String(err), ...inner].join(': ');
}
