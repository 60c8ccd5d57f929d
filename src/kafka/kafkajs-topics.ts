// Makes the broker match the declared topics on start: creates the missing ones and refuses to run
// against an existing topic that differs from its declaration. kafkajs Admin types stay in this file.
import { ConfigResourceTypes, type Admin, type ITopicConfig } from 'kafkajs';
import { KeyflowError } from '../errors';
import type { Logger } from '../logger';
import type { TopicSpec } from '../topology/types';

/** A topic config as Kafka reports it, compared with what the declaration asks for. */
interface ConfigCheck {
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

function declaredConfigs(t: TopicSpec): Record<string, string> {
  const out: Record<string, string> = { ...(t.configs ?? {}), 'cleanup.policy': t.cleanupPolicy };
  if (t.retentionMs !== undefined) out['retention.ms'] = String(t.retentionMs);
  return out;
}

function checksFor(t: TopicSpec): ConfigCheck[] {
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

function toCreateRequest(t: TopicSpec): ITopicConfig {
  return {
    topic: t.name,
    numPartitions: t.partitions,
    replicationFactor: t.replicationFactor,
    configEntries: Object.entries(declaredConfigs(t)).map(([name, value]) => ({ name, value })),
  };
}

/** A kafkajs failure as ours: the broker refusing a request is not retriable, a lost connection is. */
function adminFailure(step: string, err: unknown): KeyflowError {
  if (err instanceof KeyflowError) return err;
  const e = err as { name?: string; message?: string; retriable?: boolean };
  const message = e?.message ?? String(err);
  if (
    e?.name === 'KafkaJSProtocolError' ||
    e?.name === 'KafkaJSAggregateError' ||
    e?.name === 'KafkaJSCreateTopicError'
  ) {
    return new KeyflowError('TOPOLOGY_INVALID', `Kafka refused to ${step}: ${message}`, {
      retriable: false,
      cause: err,
    });
  }
  return new KeyflowError('UNREACHABLE', `Kafka did not answer while trying to ${step}: ${message}`, {
    retriable: true,
    cause: err,
  });
}

async function describeTopicConfigs(
  admin: Admin,
  topics: string[],
): Promise<Map<string, Map<string, string>>> {
  const res = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
  });
  const out = new Map<string, Map<string, string>>();
  for (const r of res.resources) {
    if (r.errorCode !== 0) {
      throw new KeyflowError(
        'UNREACHABLE',
        `describing topic "${r.resourceName}" failed: ${r.errorMessage}`,
        {
          retriable: true,
        },
      );
    }
    out.set(r.resourceName, new Map(r.configEntries.map((c) => [c.configName, c.configValue])));
  }
  return out;
}

function partitionMismatch(t: TopicSpec, actual: number): string {
  return (
    `topic "${t.name}" exists with ${actual} partitions but is declared with ${t.partitions}; ` +
    `a key's partition is its hash modulo the partition count, so with another count keys would map to other ` +
    `partitions and per-key order and partition-local state would break across the change. ` +
    `Declare partitions: ${actual} to keep the topic as it is, or move the data to a new topic with ${t.partitions} partitions`
  );
}

function configMismatch(t: TopicSpec, check: ConfigCheck, actual: string | undefined): string {
  const shown = actual === undefined ? 'no value' : `${check.name}=${actual}`;
  return (
    `topic "${t.name}" exists with ${shown} but is declared ${check.name === 'cleanup.policy' ? check.declared : `${check.name}=${check.declared}`}` +
    `${check.why ? ` (${check.why})` : ''}; ` +
    `change it with \`kafka-configs.sh --alter --entity-type topics --entity-name ${t.name} --add-config ${check.name}=${check.declared}\`, ` +
    `or change the declaration to match the topic`
  );
}

/** Every way the existing topics differ from their declarations, as lines that each say the fix. */
async function mismatches(admin: Admin, existing: TopicSpec[]): Promise<string[]> {
  if (existing.length === 0) return [];
  const names = existing.map((t) => t.name);
  const metadata = await admin.fetchTopicMetadata({ topics: names });
  const partitionCounts = new Map(metadata.topics.map((m) => [m.name, m.partitions.length]));
  const configs = await describeTopicConfigs(admin, names);
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

function mismatchError(problems: string[]): KeyflowError {
  const message =
    problems.length === 1
      ? problems[0]!
      : `${problems.length} differences between the broker and the declared topics:\n${problems.map((p) => `- ${p}`).join('\n')}`;
  return new KeyflowError('TOPIC_MISMATCH', message, { retriable: false, details: { problems } });
}

/**
 * Creates the declared topics that are missing (waiting for their leaders, so producing right after
 * works) and checks the existing ones against their declarations. Throws TOPIC_MISMATCH listing every
 * difference; returns the names of the topics it created.
 */
export async function ensureTopics(admin: Admin, topics: TopicSpec[], log: Logger): Promise<string[]> {
  let present: Set<string>;
  try {
    present = new Set(await admin.listTopics());
  } catch (err) {
    throw adminFailure('list topics', err);
  }
  const missing = topics.filter((t) => !present.has(t.name));
  const existing = topics.filter((t) => present.has(t.name));

  let problems: string[];
  try {
    problems = await mismatches(admin, existing);
  } catch (err) {
    throw adminFailure(`describe topics ${existing.map((t) => t.name).join(', ')}`, err);
  }
  if (problems.length > 0) {
    throw mismatchError(problems);
  }

  if (missing.length === 0) return [];
  const names = missing.map((t) => t.name);
  try {
    await admin.createTopics({ waitForLeaders: true, topics: missing.map(toCreateRequest) });
  } catch (err) {
    throw adminFailure(`create topics ${names.join(', ')}`, err);
  }
  // Another instance may have created some of them in between; checking again covers that race.
  const raced = await mismatches(admin, missing).catch((err: unknown) => {
    throw adminFailure(`describe topics ${names.join(', ')}`, err);
  });
  if (raced.length > 0) {
    throw mismatchError(raced);
  }
  log.info({ topics: names }, 'created topics');
  return names;
}
