// Declaring a topology: builder helpers with sane defaults, the dead-letter topics every stage gets,
// and validateTopology(), which refuses an inconsistent graph before anything touches Kafka.
import { KeyflowError } from '../errors';
import type { CleanupPolicy, StageSpec, TopicSpec, Topology, ValueSchema } from './types';

/** Kafka's own rule for topic names (kafka.common.internals.Topic): legal characters, at most 249. */
const LEGAL_TOPIC_CHARS = /^[a-zA-Z0-9._-]+$/;
const MAX_TOPIC_NAME_LENGTH = 249;
const DLQ_SUFFIX = '.dlq';

export interface TopicOptions<T> {
  partitions: number;
  key: string;
  value?: ValueSchema<T>;
  cleanupPolicy?: CleanupPolicy;
  replicationFactor?: number;
  retentionMs?: number;
  configs?: Record<string, string>;
}

/** A topic declaration; replication factor 1 and cleanup policy 'delete' unless given. */
export function topic<T>(name: string, opts: TopicOptions<T>): TopicSpec<T> {
  const spec: TopicSpec<T> = {
    name,
    partitions: opts.partitions,
    replicationFactor: opts.replicationFactor ?? 1,
    cleanupPolicy: opts.cleanupPolicy ?? 'delete',
    key: opts.key,
  };
  if (opts.value !== undefined) spec.value = opts.value;
  if (opts.retentionMs !== undefined) spec.retentionMs = opts.retentionMs;
  if (opts.configs !== undefined) spec.configs = opts.configs;
  return spec;
}

/** A compacted topic: the latest value per key is kept forever, so it can rebuild a table. */
export function compactTopic<T>(name: string, opts: Omit<TopicOptions<T>, 'cleanupPolicy'>): TopicSpec<T> {
  return topic(name, { ...opts, cleanupPolicy: 'compact' });
}

export function dlqTopicName(stage: string): string {
  return `${stage}${DLQ_SUFFIX}`;
}

export interface DeadLetterOptions {
  partitions: number;
  /** retention.ms of the dead-letter topics; undefined keeps the broker default. */
  retentionMs?: number;
  replicationFactor?: number;
}

/**
 * Adds one dead-letter topic per stage. They carry the original bytes (no value schema), so an event
 * that failed to decode can be parked as faithfully as one whose handler failed. A dead-letter topic
 * already declared is left as declared, which also makes this safe to apply twice.
 */
export function withDeadLetterTopics(t: Topology, opts: DeadLetterOptions): Topology {
  const declared = new Set(t.topics.map((x) => x.name));
  const added: TopicSpec[] = [];
  for (const stage of t.stages) {
    const name = dlqTopicName(stage.name);
    if (declared.has(name)) continue;
    declared.add(name);
    added.push(
      topic(name, {
        partitions: opts.partitions,
        key: 'the failed event’s key',
        cleanupPolicy: 'delete',
        replicationFactor: opts.replicationFactor,
        retentionMs: opts.retentionMs,
      }),
    );
  }
  return { topics: [...t.topics, ...added], stages: t.stages };
}

/** Why Kafka would refuse `name` as a topic name, or undefined when it is acceptable. */
export function topicNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name === '.' || name === '..') return 'cannot be "." or ".."';
  if (name.length > MAX_TOPIC_NAME_LENGTH)
    return `is ${name.length} characters long; Kafka allows at most 249`;
  if (!LEGAL_TOPIC_CHARS.test(name)) return 'may only contain ASCII letters, digits, ".", "_" and "-"';
  return undefined;
}

/**
 * Kafka refuses a topic whose name equals an existing one once "." is read as "_" (their metric
 * names would collide), so two such names in one topology could never both be created.
 */
function collisionKey(name: string): string {
  return name.replace(/\./g, '_');
}

function topicProblems(topics: TopicSpec[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const byCollisionKey = new Map<string, string>();
  for (const t of topics) {
    const nameProblem = topicNameProblem(t.name);
    if (nameProblem) problems.push(`topic name ${JSON.stringify(t.name)} ${nameProblem}`);
    if (seen.has(t.name)) {
      problems.push(`topic "${t.name}" is declared twice`);
      continue;
    }
    seen.add(t.name);
    const other = byCollisionKey.get(collisionKey(t.name));
    if (other !== undefined) {
      problems.push(
        `topics "${other}" and "${t.name}" differ only in "." versus "_"; Kafka refuses the second one, rename one`,
      );
    } else {
      byCollisionKey.set(collisionKey(t.name), t.name);
    }
    if (!Number.isInteger(t.partitions) || t.partitions < 1) {
      problems.push(
        `topic "${t.name}" has partitions=${t.partitions}; it needs a whole number of at least 1`,
      );
    }
    if (!Number.isInteger(t.replicationFactor) || t.replicationFactor < 1) {
      problems.push(
        `topic "${t.name}" has replicationFactor=${t.replicationFactor}; it needs a whole number of at least 1`,
      );
    }
    if (t.retentionMs !== undefined && (!Number.isInteger(t.retentionMs) || t.retentionMs < -1)) {
      problems.push(`topic "${t.name}" has retentionMs=${t.retentionMs}; use -1 (forever) or a number of ms`);
    }
    if (t.configs?.['cleanup.policy'] !== undefined) {
      problems.push(
        `topic "${t.name}" sets cleanup.policy in configs; declare it with cleanupPolicy instead`,
      );
    }
  }
  return problems;
}

function stageProblems(stages: StageSpec[], topics: Set<string>): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const s of stages) {
    if (seen.has(s.name)) problems.push(`stage "${s.name}" is declared twice`);
    seen.add(s.name);
    // The stage name becomes its consumer group and the prefix of its dead-letter topic.
    const nameProblem = topicNameProblem(s.name);
    const dlqProblem = topicNameProblem(dlqTopicName(s.name));
    if (nameProblem) {
      problems.push(`stage name ${JSON.stringify(s.name)} ${nameProblem} (it names a group and a topic)`);
    } else if (dlqProblem) {
      problems.push(
        `stage "${s.name}" has a dead-letter topic name "${dlqTopicName(s.name)}" that ${dlqProblem}`,
      );
    }
    if (s.inputs.length === 0) problems.push(`stage "${s.name}" has no input topic`);
    const checkRefs = (refs: string[], role: 'input' | 'output') => {
      const listed = new Set<string>();
      for (const ref of refs) {
        if (listed.has(ref)) problems.push(`stage "${s.name}" lists ${role} "${ref}" twice`);
        listed.add(ref);
        if (!topics.has(ref)) {
          problems.push(`stage "${s.name}" ${role} "${ref}" is not a declared topic; declare it in topics`);
        }
      }
    };
    checkRefs(s.inputs, 'input');
    checkRefs(s.outputs, 'output');
  }
  return problems;
}

/** Throws TOPOLOGY_INVALID listing every problem found, so one run shows all that needs fixing. */
export function validateTopology(t: Topology): void {
  const problems = [
    ...topicProblems(t.topics),
    ...stageProblems(t.stages, new Set(t.topics.map((x) => x.name))),
  ];
  if (problems.length === 0) return;
  throw new KeyflowError('TOPOLOGY_INVALID', `topology is invalid: ${problems.join('; ')}`, {
    retriable: false,
    details: { problems },
  });
}

/** Validates and returns the topology, for a domain's `export const topology = defineTopology({...})`. */
export function defineTopology(t: Topology): Topology {
  validateTopology(t);
  return t;
}
