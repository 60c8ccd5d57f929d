// What an existing topic must match of its declaration, the messages that say how it differs and what
// to do, and the start-up flow that creates the missing topics and refuses the mismatched ones. Every
// client adapter runs the same flow through a small TopicAdmin, so both refuse the same way.
import { KeyflowError } from '../errors';
import type { Logger } from '../logger';
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

/** What the broker reports of existing topics: partition counts and config values by topic name. */
export interface TopicFacts {
  partitionCounts: Map<string, number>;
  configs: Map<string, Map<string, string>>;
}

/** The four things ensureTopics needs of a client's admin API; each adapter maps its library onto it. */
export interface TopicAdmin {
  list(): Promise<string[]>;
  describe(names: string[]): Promise<TopicFacts>;
  /** Creates the topics and returns once each partition has a leader; a topic that exists already is no error. */
  create(topics: TopicSpec[]): Promise<void>;
  /** The library's failure of `step` as ours: refused by the broker is not retriable, a lost connection is. */
  failure(step: string, err: unknown): KeyflowError;
}

async function mismatches(admin: TopicAdmin, existing: TopicSpec[]): Promise<string[]> {
  if (existing.length === 0) return [];
  const facts = await admin.describe(existing.map((t) => t.name));
  return differences(existing, facts.partitionCounts, facts.configs);
}

/**
 * Creates the declared topics that are missing (waiting for their leaders, so producing right after
 * works) and checks the existing ones against their declarations. Throws TOPIC_MISMATCH listing every
 * difference; returns the names of the topics it created.
 */
export async function ensureTopics(admin: TopicAdmin, topics: TopicSpec[], log: Logger): Promise<string[]> {
  const step = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      throw err instanceof KeyflowError ? err : admin.failure(what, err);
    }
  };
  const present = new Set(await step('list topics', () => admin.list()));
  const missing = topics.filter((t) => !present.has(t.name));
  const existing = topics.filter((t) => present.has(t.name));
  const problems = await step(`describe topics ${existing.map((t) => t.name).join(', ')}`, () =>
    mismatches(admin, existing),
  );
  if (problems.length > 0) throw mismatchError(problems);
  if (missing.length === 0) return [];

  const names = missing.map((t) => t.name);
  await step(`create topics ${names.join(', ')}`, () => admin.create(missing));
  // Another instance may have created some of them in between; checking again covers that race.
  const raced = await step(`describe topics ${names.join(', ')}`, () => mismatches(admin, missing));
  if (raced.length > 0) throw mismatchError(raced);
  log.info({ topics: names }, 'created topics');
  return names;
}
