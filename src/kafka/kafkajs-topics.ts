// kafkajs's Admin as the TopicAdmin that ensureTopics (topic-checks.ts) runs on start: kafkajs Admin
// types stay in this file.
import { ConfigResourceTypes, type Admin, type ITopicConfig } from 'kafkajs';
import { KeyflowError } from '../errors';
import type { Logger } from '../logger';
import type { TopicSpec } from '../topology/types';
import {
  declaredConfigs,
  ensureTopics as ensureDeclared,
  type TopicAdmin,
  type TopicFacts,
} from './topic-checks';

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
  const e = err as { name?: string; message?: string };
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

async function describe(admin: Admin, names: string[]): Promise<TopicFacts> {
  const metadata = await admin.fetchTopicMetadata({ topics: names });
  const partitionCounts = new Map(metadata.topics.map((m) => [m.name, m.partitions.length]));
  const res = await admin.describeConfigs({
    includeSynonyms: false,
    resources: names.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
  });
  const configs = new Map<string, Map<string, string>>();
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
    configs.set(r.resourceName, new Map(r.configEntries.map((c) => [c.configName, c.configValue])));
  }
  return { partitionCounts, configs };
}

export function topicAdmin(admin: Admin): TopicAdmin {
  return {
    list: () => admin.listTopics(),
    describe: (names) => describe(admin, names),
    // kafkajs answers false, not an error, for a topic another instance created in between.
    create: async (topics) => {
      await admin.createTopics({ waitForLeaders: true, topics: topics.map(toCreateRequest) });
    },
    failure: adminFailure,
  };
}

/** Creates the missing declared topics and checks the existing ones; returns the names it created. */
export function ensureTopics(admin: Admin, topics: TopicSpec[], log: Logger): Promise<string[]> {
  return ensureDeclared(topicAdmin(admin), topics, log);
}
