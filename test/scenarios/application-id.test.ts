// Two deployments on one cluster with the same stage names but different KEYFLOW_APPLICATION_IDs
// (staging and production, two apps): each joins a group of its own, takes every partition of its own
// input, applies all of its own events to its own database and none of the other's. With one shared
// group id (the bare stage name) the two would split partitions and each would miss part of its stream.
import { MongoClient } from 'mongodb';
import { adminClient, cleanupAll, env, eventually, onCleanup, uniqueName } from '../helpers';
import { groupIdFor } from '../../src/topology/names';
import type { Topology } from '../../src/topology/types';
import { COUNTERS, counterEvent, counterTopology, type CounterDoc } from './fixtures/counter';
import { prefix, runProcessor, testConfig, testProducer } from './harness';

afterAll(cleanupAll);

const PARTITIONS = 4;
const KEYS = 24;
const PER_KEY = 5;

/** The counter flow on topics of its own, its stage renamed to the name both deployments share. */
function deployment(stage: string, tag: string) {
  const p = prefix(`appid-${tag}`);
  const base = counterTopology(p, { partitions: PARTITIONS });
  const topology: Topology = { ...base, stages: base.stages.map((s) => ({ ...s, name: stage })) };
  const appId = uniqueName(`app-${tag}`).replace(/\./g, '-');
  const config = testConfig({ KEYFLOW_APPLICATION_ID: appId });
  return { tag, input: `${p}.in`, topology, config, group: groupIdFor(appId, stage) };
}

test('two processors with different application ids each apply all of their own inputs and none of the other’s', async () => {
  const stage = `${prefix('appid')}.counter`;
  const apps = [deployment(stage, 'a'), deployment(stage, 'b')];
  const client = new MongoClient(env('MONGO_URL'));
  await client.connect();
  onCleanup(async () => {
    for (const a of apps)
      await client
        .db(a.config.mongoDb)
        .dropDatabase()
        .catch(() => undefined);
    await client.close();
  });
  // One after the other: both declare the shared stage's dead-letter topic.
  const processors = [];
  for (const app of apps) processors.push({ app, processor: await runProcessor(app.config, app.topology) });

  // Each group has this processor alone, holding every partition of its own input and nothing else.
  // Asked of the processors themselves: a KIP-848 group (the platformatic client) is not described by
  // the classic DescribeGroups that kafkajs's admin speaks.
  for (const a of processors) {
    await eventually(
      async () => (a.processor.runners.every((r) => r.assignedPartitions === PARTITIONS) ? true : undefined),
      60_000,
      `the processor of ${a.app.tag} to hold all ${PARTITIONS} partitions of its input`,
    );
  }

  for (const a of apps) {
    const producer = await testProducer(a.config, a.topology);
    const events = Array.from({ length: KEYS * PER_KEY }, (_, i) =>
      counterEvent(`${a.tag}${i % KEYS}`, Math.floor(i / KEYS)),
    );
    await producer.publish(events.map((e) => ({ topic: a.input, key: e.id, value: e, eventId: e.eventId })));
  }

  for (const a of apps) {
    const docs = await eventually(
      async () => {
        const d = await client.db(a.config.mongoDb).collection<CounterDoc>(COUNTERS).find().toArray();
        return d.length >= KEYS && d.every((x) => x.count >= PER_KEY) ? d : undefined;
      },
      60_000,
      `every key of ${a.tag} applied in its own database`,
    );
    // Exactly its own keys (none of the other deployment's), each applied once per event, in order.
    expect(docs.map((d) => d._id).sort()).toEqual(
      Array.from({ length: KEYS }, (_, i) => `${a.tag}${i}`).sort(),
    );
    for (const d of docs) expect(d.seqs).toEqual(Array.from({ length: PER_KEY }, (_, i) => i));
  }
  // Each group commits every partition of its own input that holds records, and nothing of the other's.
  const admin = await adminClient();
  for (const a of apps) {
    const other = apps.find((x) => x !== a)!;
    const filled = (await admin.fetchTopicOffsets(a.input)).filter((p) => Number(p.high) > 0).length;
    await eventually(
      async () => {
        const offsets = await admin.fetchOffsets({ groupId: a.group, topics: [a.input, other.input] });
        const committed = (topic: string) =>
          offsets.find((t) => t.topic === topic)!.partitions.filter((p) => Number(p.offset) >= 0).length;
        expect(committed(other.input)).toBe(0);
        return committed(a.input) === filled ? true : undefined;
      },
      30_000,
      `${a.group} to commit all ${filled} filled partitions of its input`,
    );
  }
});
