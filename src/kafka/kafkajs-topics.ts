// Makes the broker match the declared topics on start: creates the missing ones and refuses to run
// against an existing topic that differs from its declaration. kafkajs Admin types stay in this file.
import { ConfigResourceTypes, type Admin, type ITopicConfig } from 'kafkajs';
import { KeyflowError } from '../errors';
import type { Logger } from '../logger';
import type { TopicSpec } from '../topology/types';
import { declaredConfigs, differences, mismatchError } from './topic-checks';

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

/** Every way the existing topics differ from their declarations, as lines that each say the fix. */
async function mismatches(admin: Admin, existing: TopicSpec[]): Promise<string[]> {
  if (existing.length === 0) return [];
  const names = existing.map((t) => t.name);
  const metadata = await admin.fetchTopicMetadata({ topics: names });
  const partitionCounts = new Map(metadata.topics.map((m) => [m.name, m.partitions.length]));
  const configs = await describeTopicConfigs(admin, names);
  return differences(existing, partitionCounts, configs);
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
