// A rebalance does not wait for the slowest batch: when a second member joins, the member working on a
// long batch hears "rebalance in progress" on its heartbeat, takes no new event, commits what finished
// and rejoins; the new owner of the partition redoes only the uncommitted rest, so nothing is lost and
// nothing is applied twice.
import { adminClient, cleanupAll, eventually } from '../helpers';
import { createLogger } from '../../src/logger';
import { ensureTopics } from '../../src/kafka/kafkajs-topics';
import { COUNTERS, counterEvent, counterTopology, type CounterDoc } from './fixtures/counter';
import { freshDbNamed, prefix, runProcessor, testConfig, testProducer } from './harness';

afterAll(cleanupAll);

test('a member in a long batch lets a joining member in at once, and every event applies once, in order', async () => {
  const p = prefix('rebal');
  const config = testConfig();
  // One partition, one key: the whole stream is one long batch that only one member can work on.
  const topology = counterTopology(p, { partitions: 1 });
  const admin = await adminClient();
  await ensureTopics(admin, topology.topics, createLogger('silent'));
  const producer = await testProducer(config, topology);
  const { db } = await freshDbNamed(config.mongoDb);
  const total = 300;
  // 40 ms per event: 12 s for the batch, far longer than the heartbeat interval (1 s).
  const events = Array.from({ length: total }, (_, i) => counterEvent('k', i, { delayMs: 40 }));
  await producer.publish(events.map((e) => ({ topic: `${p}.in`, key: e.id, value: e, eventId: e.eventId })));
  const applied = async () => (await db.collection<CounterDoc>(COUNTERS).findOne({ _id: 'k' }))?.count ?? 0;

  await runProcessor(config, topology);
  await eventually(async () => ((await applied()) >= 5 ? true : undefined), 60_000);

  // The second member's start resolves once the group has rebalanced with it in.
  await runProcessor(config, topology);
  const whenJoined = await applied();
  // Before the fix the first member finished its whole batch before rejoining, so this was `total`.
  expect(whenJoined).toBeLessThan(total / 2);

  const doc = await eventually(async () => {
    const d = await db.collection<CounterDoc>(COUNTERS).findOne({ _id: 'k' });
    return d && d.count >= total ? d : undefined;
  }, 90_000);
  expect(doc.count).toBe(total);
  expect(doc.seqs).toEqual(events.map((e) => e.seq));
});
