// Topology declarations: validation refuses every inconsistency with a precise message, dead-letter
// topics are derived per stage, and the text and Mermaid renderings show the whole graph.
import { z } from 'zod';
import { appTopology } from '../../src/app/topology';
import { topologyCommand } from '../../src/cli/topology';
import { KeyflowError } from '../../src/errors';
import {
  compactTopic,
  dlqTopicName,
  topic,
  topicNameProblem,
  validateTopology,
  withDeadLetterTopics,
} from '../../src/topology/define';
import { renderMermaid, renderText } from '../../src/topology/render';
import type { StageSpec, Topology } from '../../src/topology/types';

const orderValue = {
  avro: {
    type: 'record',
    name: 'Order',
    namespace: 'keyflow.test',
    fields: [{ name: 'id', type: 'string' }],
  },
  zod: z.object({ id: z.string() }),
};

function stage(name: string, inputs: string[], outputs: string[] = []): StageSpec {
  return {
    name,
    kind: 'action',
    inputs,
    outputs,
    handler: {
      read: async () => undefined,
      decide: () => ({ plan: null, emit: [] }),
      write: async () => 'applied',
    },
  };
}

function valid(): Topology {
  return {
    topics: [
      topic('orders', { partitions: 6, key: 'orderId', value: orderValue }),
      compactTopic('order-status', { partitions: 6, key: 'orderId', value: orderValue }),
    ],
    stages: [stage('order-tracker', ['orders'], ['order-status'])],
  };
}

function problemOf(t: Topology): string {
  try {
    validateTopology(t);
  } catch (err) {
    expect(err).toBeInstanceOf(KeyflowError);
    expect((err as KeyflowError).code).toBe('TOPOLOGY_INVALID');
    expect((err as KeyflowError).retriable).toBe(false);
    return (err as KeyflowError).message;
  }
  throw new Error('expected validateTopology to throw');
}

test('a consistent topology passes, and topic() fills replication factor 1 and delete policy', () => {
  // The builder's defaults are the ones a single-broker dev stack and an event topic need.
  expect(() => validateTopology(valid())).not.toThrow();
  const t = topic('events', { partitions: 3, key: 'id' });
  expect(t).toEqual({
    name: 'events',
    partitions: 3,
    replicationFactor: 1,
    cleanupPolicy: 'delete',
    key: 'id',
  });
  expect(compactTopic('table', { partitions: 1, key: 'id' }).cleanupPolicy).toBe('compact');
});

test('duplicate topic and stage names are refused, naming the duplicate', () => {
  // Two declarations of one name would leave it unclear which partitions or handler apply.
  const t = valid();
  t.topics.push(topic('orders', { partitions: 6, key: 'orderId' }));
  t.stages.push(stage('order-tracker', ['orders']));
  const message = problemOf(t);
  expect(message).toContain('topic "orders" is declared twice');
  expect(message).toContain('stage "order-tracker" is declared twice');
});

test('a stage reading or writing an undeclared topic is refused, naming stage, role and topic', () => {
  // Stages may only touch declared topics, so ensureTopics and the codec know every topic in use.
  const t = valid();
  t.stages.push(stage('mailer', ['order-shipped'], ['emails']));
  const message = problemOf(t);
  expect(message).toContain('stage "mailer" input "order-shipped" is not a declared topic');
  expect(message).toContain('stage "mailer" output "emails" is not a declared topic');
});

test('a stage with no input is refused', () => {
  // A stage runs as a consumer group; with nothing to consume it would never run.
  const t = valid();
  t.stages.push(stage('idle', []));
  expect(problemOf(t)).toContain('stage "idle" has no input topic');
});

test('partitions below 1 (or not whole) are refused', () => {
  // Kafka cannot create a topic without partitions, and a fraction is a typo.
  const t = valid();
  t.topics.push(topic('empty', { partitions: 0, key: 'id' }), topic('half', { partitions: 1.5, key: 'id' }));
  const message = problemOf(t);
  expect(message).toContain('topic "empty" has partitions=0; it needs a whole number of at least 1');
  expect(message).toContain('topic "half" has partitions=1.5');
});

test('topic names Kafka would refuse are refused before Kafka sees them', () => {
  // Kafka allows [a-zA-Z0-9._-], at most 249 characters, not "." or "..", and no "."/"_" collision.
  expect(topicNameProblem('orders.v1_x-y')).toBeUndefined();
  expect(topicNameProblem('orders v1')).toContain('may only contain');
  expect(topicNameProblem('ordérs')).toContain('may only contain');
  expect(topicNameProblem('..')).toContain('cannot be');
  expect(topicNameProblem('x'.repeat(250))).toContain('at most 249');
  const t = valid();
  t.topics.push(topic('bad/name', { partitions: 1, key: 'id' }));
  t.topics.push(topic('order_status', { partitions: 1, key: 'id' }));
  const message = problemOf(t);
  expect(message).toContain('topic name "bad/name" may only contain');
  // "-" is not folded: only "." and "_" collide.
  expect(message).not.toContain('order_status');
  const dotted = valid();
  dotted.topics.push(topic('a.b', { partitions: 1, key: 'id' }), topic('a_b', { partitions: 1, key: 'id' }));
  expect(problemOf(dotted)).toContain('topics "a.b" and "a_b" differ only in "." versus "_"');
});

test('a stage name that cannot prefix a dead-letter topic is refused', () => {
  // The stage name is also its consumer group and `<stage>.dlq`, so it obeys topic-name rules.
  const t = valid();
  t.stages.push(stage('my stage', ['orders']), stage('s'.repeat(247), ['orders']));
  const message = problemOf(t);
  expect(message).toContain('stage name "my stage" may only contain');
  expect(message).toContain(
    `has a dead-letter topic name "${'s'.repeat(247)}.dlq" that is 251 characters long`,
  );
});

test('every problem is reported at once, and listed in details', () => {
  // One run of the validator shows everything to fix, not the first problem only.
  const t: Topology = { topics: [topic('a', { partitions: 0, key: 'id' })], stages: [stage('s', ['b'])] };
  try {
    validateTopology(t);
    throw new Error('expected validateTopology to throw');
  } catch (err) {
    expect((err as KeyflowError).details?.problems).toEqual([
      'topic "a" has partitions=0; it needs a whole number of at least 1',
      'stage "s" input "b" is not a declared topic; declare it in topics',
    ]);
  }
});

test('withDeadLetterTopics adds one delete-policy, schema-less `<stage>.dlq` per stage, once', () => {
  // Dead letters keep the original bytes, so a message that failed to decode can be parked as well.
  expect(dlqTopicName('order-tracker')).toBe('order-tracker.dlq');
  const t = withDeadLetterTopics(valid(), { partitions: 3, retentionMs: 604_800_000 });
  const dlq = t.topics.find((x) => x.name === 'order-tracker.dlq');
  expect(dlq).toMatchObject({
    partitions: 3,
    cleanupPolicy: 'delete',
    retentionMs: 604_800_000,
    replicationFactor: 1,
  });
  expect(dlq?.value).toBeUndefined();
  expect(t.topics).toHaveLength(3);
  expect(withDeadLetterTopics(t, { partitions: 3 }).topics).toHaveLength(3);
  expect(() => validateTopology(t)).not.toThrow();
});

test('renderText lists topics with partitions, policy, key and schema, and stages with kind, inputs, outputs, dlq', () => {
  // The text rendering is what `keyflow topology` prints for an operator.
  const text = renderText(withDeadLetterTopics(valid(), { partitions: 1 }));
  expect(text).toBe(
    [
      'Topics (3)',
      '  orders             6 partitions  delete   key orderId                 value keyflow.test.Order',
      '  order-status       6 partitions  compact  key orderId                 value keyflow.test.Order',
      '  order-tracker.dlq  1 partition   delete   key the failed event’s key  value raw bytes',
      '',
      'Stages (1)',
      '  order-tracker  action  in: orders  out: order-status  dlq: order-tracker.dlq',
      '',
    ].join('\n'),
  );
});

test('renderMermaid draws topics and stages as nodes, input → stage → output, dead letters dashed', () => {
  // The flowchart is pasted into docs; generated ids keep names with "." and "-" valid Mermaid.
  const t = valid();
  t.stages.push({
    name: 'notifier',
    kind: 'observer',
    inputs: ['order-status'],
    outputs: [],
    handler: { observe: async () => ({ outcome: 'applied' }) },
  });
  expect(renderMermaid(t)).toBe(
    [
      'flowchart LR',
      '  t0[("orders")]',
      '  t1[("order-status")]',
      '  s0["order-tracker (action)"]',
      '  t2[("order-tracker.dlq")]',
      '  s1["notifier (observer)"]',
      '  t3[("notifier.dlq")]',
      '  t0 --> s0',
      '  s0 --> t1',
      '  s0 -.->|dead letter| t2',
      '  t1 --> s1',
      '  s1 -.->|dead letter| t3',
      '',
    ].join('\n'),
  );
});

test('the app topology is valid and holds the compacted tenant-settings topic keyed by tenantId', () => {
  // The engine's own settings table must survive forever per tenant, hence compaction.
  const t = appTopology();
  const settings = t.topics.find((x) => x.name === 'tenant-settings');
  expect(settings).toMatchObject({ cleanupPolicy: 'compact', key: 'tenantId' });
  expect(settings?.value?.avro).toMatchObject({ type: 'record', name: 'TenantSettings' });
  expect(settings?.value?.zod.safeParse({ tenantId: 't1', settings: '{}' }).success).toBe(true);
});

test('`keyflow topology` prints the text or the Mermaid rendering, and refuses unknown options', async () => {
  // The command is a thin call into render.ts over appTopology().
  const out: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  try {
    expect(await topologyCommand.run([])).toBe(0);
    expect(await topologyCommand.run(['--mermaid'])).toBe(0);
  } finally {
    spy.mockRestore();
  }
  expect(out[0]).toBe(renderText(appTopology()));
  expect(out[1]).toBe(renderMermaid(appTopology()));
  await expect(topologyCommand.run(['--dot'])).rejects.toMatchObject({ code: 'USAGE' });
});
