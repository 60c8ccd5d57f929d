// Makes the broker match the declared topics on start, through @platformatic/kafka's Admin: creates
// the missing ones (and waits for their leaders) and refuses an existing topic that differs from its
// declaration, with the same lines as the kafkajs adapter (topic-checks.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigResourceTypes, type Admin } from '@platformatic/kafka';
import { KeyflowError } from '../errors';
import type { Logger } from '../logger';
import type { TopicSpec } from '../topology/types';
import { brokerAnswers, errorTree } from './platformatic-errors';
import { declaredConfigs, differences, mismatchError } from './topic-checks';

/** A library failure as ours: the broker refusing a request is not retriable, a lost connection is. */
function adminFailure(step: string, err: unknown): KeyflowError {
  if (err instanceof KeyflowError) return err;
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

async function mismatches(admin: Admin, existing: TopicSpec[]): Promise<string[]> {
  if (existing.length === 0) return [];
  const names = existing.map((t) => t.name);
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
  return differences(existing, partitionCounts, configs);
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

/** Creates the missing declared topics and checks the existing ones; returns the names it created. */
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
  if (problems.length > 0) throw mismatchError(problems);
  if (missing.length === 0) return [];

  const names = missing.map((t) => t.name);
  try {
    // Configs go per request in this API, so one request per topic.
    for (const t of missing) {
      await admin
        .createTopics({
          topics: [t.name],
          partitions: t.partitions,
          replicas: t.replicationFactor,
          configs: Object.entries(declaredConfigs(t)).map(([name, value]) => ({ name, value })),
        })
        .catch((err: unknown) => {
          // Another instance created it in between: the check below covers that race.
          if (!brokerAnswers(err).includes('TOPIC_ALREADY_EXISTS')) throw err;
        });
    }
    await leadersElected(admin, names);
  } catch (err) {
    throw adminFailure(`create topics ${names.join(', ')}`, err);
  }
  const raced = await mismatches(admin, missing).catch((err: unknown) => {
    throw adminFailure(`describe topics ${names.join(', ')}`, err);
  });
  if (raced.length > 0) throw mismatchError(raced);
  log.info({ topics: names }, 'created topics');
  return names;
}
