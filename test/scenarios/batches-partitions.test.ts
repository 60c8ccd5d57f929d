// Adding partitions to batch-status while a batch is open neither loses a transition nor counts one
// twice. The fold runs on 2 partitions; once it has counted some outcomes, the topic grows to 6 (Kafka
// admin createPartitions), a second instance declared with 6 joins, and the rest arrives through a
// producer that knows the new count: the other assets' outcomes, every earlier record again (most
// keys now hash to another partition, so one row has records on an old and a new partition), and a
// later success for half of the failed ones. The batch ends with the true counts, finishes only then,
// and no counter slot keeps a pending transition.
import { Partitioners } from 'kafkajs';
import { batchesFlow, flowNames } from '../../src/batches';
import { statusKey } from '../../src/batches/names';
import { batchCountsReplay } from '../../src/batches/replay';
import type { BatchStatus } from '../../src/batches/schemas';
import { batchesOf, createBatch, rowsOf, slotsOf } from '../../src/batches/store';
import type { Topology } from '../../src/topology/types';
import { adminClient, cleanupAll, eventually } from '../helpers';
import { prefix, runProcessor, startBatchesRig, testConfig, testProducer } from './harness';

jest.setTimeout(180_000);
afterAll(cleanupAll);

const ASSETS = 90;
const FIRST = 40;
const failed = (i: number) => i % 5 === 0;
const retried = (i: number) => failed(i) && i % 10 === 0;

test('batch-status grows from 2 to 6 partitions mid-batch: every outcome counted once', async () => {
  const config = testConfig();
  const p = prefix('growth');
  const names = flowNames(p);
  const refuse = async () => {
    throw new Error('the ingest stage does not run here');
  };
  const before = batchesFlow({ prefix: p, partitions: 2, handler: refuse });
  const after = batchesFlow({ prefix: p, partitions: 2, statusPartitions: 6, handler: refuse });
  const { db } = await startBatchesRig(config, before, [names.foldStage]);
  const batch = await createBatch(
    db,
    'acme',
    Array.from({ length: ASSETS }, (_, i) => ({ id: `a${i}`, origin: `https://x/${i}` })),
    new Date(0),
  );
  const outcome = (i: number, retry = false): BatchStatus => ({
    batchId: batch._id,
    customerId: 'acme',
    assetId: `a${i}`,
    status: failed(i) && !retry ? 'error' : 'completed',
    error: failed(i) && !retry ? 'bad image' : null,
    finished: (retry ? 20_000 : 1_000) + i,
  });
  const record = (v: BatchStatus) => ({
    topic: names.statusTopic,
    key: statusKey(v.batchId, v.assetId),
    value: v,
  });
  const topology = (flow: typeof before): Topology => ({ topics: flow.topics, stages: [] });

  const early = await testProducer(config, topology(before));
  const firstRecords = Array.from({ length: FIRST }, (_, i) => record(outcome(i)));
  await early.publish(firstRecords);
  const counted = async () => {
    const b = await batchesOf(db).findOne({ _id: batch._id });
    return b && b.completed + b.errors > 0 ? b : undefined;
  };
  expect((await eventually(counted, 60_000)).finished).toBeNull();

  const admin = await adminClient();
  await admin.createPartitions({ topicPartitions: [{ topic: names.statusTopic, count: 6 }] });
  // The second instance's join makes the group's leader read the new partition count and assign it.
  await runProcessor(
    { ...testConfig(), mongoDb: config.mongoDb },
    { topics: after.topics, stages: after.stages },
    {
      indexes: after.indexes,
      stages: [names.foldStage],
    },
  );
  const late = await testProducer(config, topology(after));
  const rest = [
    ...Array.from({ length: ASSETS - FIRST }, (_, i) => record(outcome(FIRST + i))),
    ...firstRecords,
    ...Array.from({ length: ASSETS }, (_, i) => i)
      .filter(retried)
      .map((i) => record(outcome(i, true))),
  ];
  await late.publish(rest);

  // The earlier records' keys that now hash to another partition: the case the slots must survive.
  const partitionOf = Partitioners.DefaultPartitioner();
  const at = (key: string, count: number) =>
    partitionOf({
      topic: names.statusTopic,
      partitionMetadata: Array.from({ length: count }, (_, partitionId) => ({
        partitionId,
        leader: 0,
        partitionErrorCode: 0,
        replicas: [0],
        isr: [0],
      })),
      message: { key, value: null },
    });
  const moved = firstRecords.filter((r) => at(r.key, 2) !== at(r.key, 6));
  expect(moved.length).toBeGreaterThan(10);
  const offsets = await admin.fetchTopicOffsets(names.statusTopic);
  expect(offsets.filter((o) => o.partition >= 2 && Number(o.high) > 0).length).toBe(4);

  const errors = Array.from({ length: ASSETS }, (_, i) => i).filter((i) => failed(i) && !retried(i)).length;
  // Once every record is folded: the sums are the truth and no slot holds a transition back. On the way,
  // a batch seen finished never has a waiting row (rows only leave waiting, so one seen after is one then).
  let earlyFinish = 0;
  const final = await eventually(async () => {
    const b = (await batchesOf(db).findOne({ _id: batch._id }))!;
    if (b.finished && (await rowsOf(db).countDocuments({ batchId: batch._id, status: 'waiting' })) > 0) {
      earlyFinish++;
    }
    const slots = await slotsOf(db).find({ batchId: batch._id }).toArray();
    const settled = slots.every((s) => s.pending.length === 0);
    const counted = b.completed === ASSETS - errors && b.errors === errors;
    return settled && counted && b.finished ? { b, slots } : undefined;
  }, 60_000);
  expect(earlyFinish).toBe(0);
  expect(new Set(final.slots.map((s) => s.partition)).size).toBeGreaterThan(2);
  const id = String(batch._id);
  expect(await batchCountsReplay.actual(db, id)).toEqual(await batchCountsReplay.expected(db, id));
});
