// ensureTopics against the real broker: missing topics are created as declared, and an existing
// topic that differs from its declaration is refused with a message that says what to do.
import type { Admin } from 'kafkajs';
import { KeyflowError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { ensureTopics } from '../../src/kafka/kafkajs-topics';
import { compactTopic, topic } from '../../src/topology/define';
import type { TopicSpec } from '../../src/topology/types';
import { adminClient, cleanupAll, freshTopic, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

const log = createLogger('silent');

async function mismatchOf(admin: Admin, topics: TopicSpec[]): Promise<KeyflowError> {
  try {
    await ensureTopics(admin, topics, log);
  } catch (err) {
    expect(err).toBeInstanceOf(KeyflowError);
    expect((err as KeyflowError).code).toBe('TOPIC_MISMATCH');
    expect((err as KeyflowError).retriable).toBe(false);
    return err as KeyflowError;
  }
  throw new Error('expected ensureTopics to refuse');
}

test('missing topics are created with their partitions, policy and configs; existing ones are left alone', async () => {
  // A first start creates everything; a second start with the same declarations creates nothing.
  const admin = await adminClient();
  const events = topic(uniqueName('events'), { partitions: 3, key: 'id', retentionMs: 3_600_000 });
  const table = compactTopic(uniqueName('table'), {
    partitions: 2,
    key: 'id',
    configs: { 'min.compaction.lag.ms': '1000' },
  });
  onCleanup(() => admin.deleteTopics({ topics: [events.name, table.name] }));

  expect(await ensureTopics(admin, [events, table], log)).toEqual([events.name, table.name]);

  const meta = await admin.fetchTopicMetadata({ topics: [events.name, table.name] });
  const counts = Object.fromEntries(meta.topics.map((t) => [t.name, t.partitions.length]));
  expect(counts).toEqual({ [events.name]: 3, [table.name]: 2 });
  expect(await ensureTopics(admin, [events, table], log)).toEqual([]);
});

test('a topic declared compact but found with delete policy is refused, saying how to fix it', async () => {
  // Running a table topic with delete policy would silently lose keys after retention.
  const admin = await adminClient();
  const name = await freshTopic('batch-status', 3, { 'cleanup.policy': 'delete' });
  const err = await mismatchOf(admin, [compactTopic(name, { partitions: 3, key: 'batchId' })]);
  expect(err.message).toContain(`topic "${name}" exists with cleanup.policy=delete but is declared compact`);
  expect(err.message).toContain(`--entity-name ${name} --add-config cleanup.policy=compact`);
});

test('a partition count different from the declaration is refused, explaining the key mapping', async () => {
  // Another partition count would send keys to other partitions and break per-key order.
  const admin = await adminClient();
  const name = await freshTopic('orders', 3);
  const err = await mismatchOf(admin, [topic(name, { partitions: 6, key: 'orderId' })]);
  expect(err.message).toContain(`topic "${name}" exists with 3 partitions but is declared with 6`);
  expect(err.message).toContain('keys would map to other partitions');
  expect(err.message).toContain('Declare partitions: 3');
});

test('a declared config entry that differs on the broker is refused, naming the config and both values', async () => {
  // Extra configs such as min.compaction.lag.ms are part of the declaration and checked like the policy.
  const admin = await adminClient();
  const name = await freshTopic('settings', 1, { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0' });
  const declared = compactTopic(name, {
    partitions: 1,
    key: 'id',
    configs: { 'min.compaction.lag.ms': '60000' },
  });
  const err = await mismatchOf(admin, [declared]);
  expect(err.message).toContain(
    `topic "${name}" exists with min.compaction.lag.ms=0 but is declared min.compaction.lag.ms=60000`,
  );
  expect(err.details?.problems).toHaveLength(1);
});

test('every mismatch is reported at once and nothing missing is created while one exists', async () => {
  // Start-up stops before changing the broker, so a wrong declaration leaves no half-made topics.
  const admin = await adminClient();
  const existing = await freshTopic('mixed', 2, { 'cleanup.policy': 'delete' });
  const missing = topic(uniqueName('never'), { partitions: 1, key: 'id' });
  const err = await mismatchOf(admin, [compactTopic(existing, { partitions: 4, key: 'id' }), missing]);
  expect(err.details?.problems).toHaveLength(2);
  expect(await admin.listTopics()).not.toContain(missing.name);
});
