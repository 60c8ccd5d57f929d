// @platformatic/kafka's Admin as the TopicAdmin that ensureTopics (topic-checks.ts) runs on start:
// creating waits for the leaders, so producing right after works.
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigResourceTypes, type Admin } from '@platformatic/kafka';
import { KeyflowError } from '../errors';
import type { Logger } from '../logger';
import type { TopicSpec } from '../topology/types';
import { brokerAnswers, errorTree } from './platformatic-errors';
import {
  declaredConfigs,
  ensureTopics as ensureDeclared,
  type TopicAdmin,
  type TopicFacts,
} from './topic-checks';

/** A library failure as ours: the broker refusing a request is not retriable, a lost connection is. */
function adminFailure(step: string, err: unknown): KeyflowError {
  const message = (err as { message?: string } | null)?.message ?? String(err);
  const answers = brokerAnswers(err);
  const outage = errorTree(err).some((e) => e.code === 'PLT_KFK_NETWORK' || e.code === 'PLT_KFK_TIMEOUT');
  if (answers.length > 0 && !outage) {
    return new KeyflowError(
      'TOPOLOGY_INVALID',
      `Kafka refused to ${step}: ${message} (${answers.join(', ')})`,
      {
        retriable: false,
        cause: err,
      },
    );
  }
  return new KeyflowError('UNREACHABLE', `Kafka did not answer while trying to ${step}: ${message}`, {
    retriable: true,
    cause: err,
  });
}

async function describe(admin: Admin, names: string[]): Promise<TopicFacts> {
  const metadata = await admin.metadata({ topics: names, forceUpdate: true });
  const partitionCounts = new Map([...metadata.topics].map(([name, t]) => [name, t.partitionsCount]));
  const described = await admin.describeConfigs({
    resources: names.map((resourceName) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName })),
  });
  const configs = new Map<string, Map<string, string>>();
  for (const r of described) {
    const values = new Map<string, string>();
    for (const c of r.configs) if (c.value !== null && c.value !== undefined) values.set(c.name, c.value);
    configs.set(r.resourceName, values);
  }
  return { partitionCounts, configs };
}

/** Waits until every partition of `names` has a leader, so producing right after creation works. */
async function leadersElected(admin: Admin, names: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const md = await admin.metadata({ topics: names, forceUpdate: true }).catch(() => undefined);
    const ready =
      md !== undefined &&
      names.every((n) => {
        const t = md.topics.get(n);
        return (
          t !== undefined &&
          t.partitions.length === t.partitionsCount &&
          t.partitions.every((p) => p.leader >= 0)
        );
      });
    if (ready) return;
    if (Date.now() > deadline)
      throw new KeyflowError('UNREACHABLE', `no leader elected for ${names.join(', ')}`);
    await sleep(100);
  }
}

/** Configs go per request in this API, so one request per topic; then waits for the leaders. */
async function create(admin: Admin, topics: TopicSpec[]): Promise<void> {
  for (const t of topics) {
    await admin
      .createTopics({
        topics: [t.name],
        partitions: t.partitions,
        replicas: t.replicationFactor,
        configs: Object.entries(declaredConfigs(t)).map(([name, value]) => ({ name, value })),
      })
      .catch((err: unknown) => {
        // Another instance created it in between: ensureTopics checks it again after.
        if (!brokerAnswers(err).includes('TOPIC_ALREADY_EXISTS')) throw err;
      });
  }
  await leadersElected(
    admin,
    topics.map((t) => t.name),
  );
}

export function topicAdmin(admin: Admin): TopicAdmin {
  return {
    list: () => admin.listTopics(),
    describe: (names) => describe(admin, names),
    create: (topics) => create(admin, topics),
    failure: adminFailure,
  };
}

/** Creates the missing declared topics and checks the existing ones; returns the names it created. */
export function ensureTopics(admin: Admin, topics: TopicSpec[], log: Logger): Promise<string[]> {
  return ensureDeclared(topicAdmin(admin), topics, log);
}
