// What an existing topic must match of its declaration, and the messages that say how it differs and
// what to do: shared by every client adapter's ensureTopics, so both refuse the same way.
import { KeyflowError } from '../errors';
import type { TopicSpec } from '../topology/types';

/** A topic config as Kafka reports it, compared with what the declaration asks for. */
export interface ConfigCheck {
  name: string;
  declared: string;
  /** Two values mean the same thing (cleanup.policy is a set: "compact,delete" = "delete,compact"). */
  same(actual: string): boolean;
  /** What the mismatch breaks, in a few words; undefined when there is nothing special to say. */
  why?: string;
}

function policySet(v: string): string {
  return v
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .sort()
    .join(',');
}

export function declaredConfigs(t: TopicSpec): Record<string, string> {
  const out: Record<string, string> = { ...(t.configs ?? {}), 'cleanup.policy': t.cleanupPolicy };
  if (t.retentionMs !== undefined) out['retention.ms'] = String(t.retentionMs);
  return out;
}

export function checksFor(t: TopicSpec): ConfigCheck[] {
  return Object.entries(declaredConfigs(t)).map(([name, declared]) => {
    if (name !== 'cleanup.policy') return { name, declared, same: (actual: string) => actual === declared };
    return {
      name,
      declared,
      same: (actual: string) => policySet(actual) === policySet(declared),
      why:
        declared === 'compact'
          ? 'a delete-policy topic drops old keys after retention, so the latest value per key could not be rebuilt from it'
          : 'a compacted topic keeps only the latest value per key, so events the stages expect would be missing',
    };
  });
}

export function partitionMismatch(t: TopicSpec, actual: number): string {
  return (
    `topic "${t.name}" exists with ${actual} partitions but is declared with ${t.partitions}; ` +
    `a key's partition is its hash modulo the partition count, so with another count keys would map to other ` +
    `partitions and per-key order and partition-local state would break across the change. ` +
    `Declare partitions: ${actual} to keep the topic as it is, or move the data to a new topic with ${t.partitions} partitions`
  );
}

export function configMismatch(t: TopicSpec, check: ConfigCheck, actual: string | undefined): string {
  const shown = actual === undefined ? 'no value' : `${check.name}=${actual}`;
  return (
    `topic "${t.name}" exists with ${shown} but is declared ${check.name === 'cleanup.policy' ? check.declared : `${check.name}=${check.declared}`}` +
    `${check.why ? ` (${check.why})` : ''}; ` +
    `change it with \`kafka-configs.sh --alter --entity-type topics --entity-name ${t.name} --add-config ${check.name}=${check.declared}\`, ` +
    `or change the declaration to match the topic`
  );
}

export function mismatchError(problems: string[]): KeyflowError {
  const message =
    problems.length === 1
      ? problems[0]!
      : `${problems.length} differences between the broker and the declared topics:\n${problems.map((p) => `- ${p}`).join('\n')}`;
  return new KeyflowError('TOPIC_MISMATCH', message, { retriable: false, details: { problems } });
}

/**
 * Every way the existing topics differ from their declarations, given what the broker reports:
 * partition counts and config values per topic. Lines that each say the fix.
 */
export function differences(
  existing: TopicSpec[],
  partitionCounts: Map<string, number>,
  configs: Map<string, Map<string, string>>,
): string[] {
  const problems: string[] = [];
  for (const t of existing) {
    const partitions = partitionCounts.get(t.name);
    if (partitions !== undefined && partitions !== t.partitions)
      problems.push(partitionMismatch(t, partitions));
    const actual = configs.get(t.name) ?? new Map<string, string>();
    for (const check of checksFor(t)) {
      const value = actual.get(check.name);
      if (value === undefined || !check.same(value)) problems.push(configMismatch(t, check, value));
    }
  }
  return problems;
}
