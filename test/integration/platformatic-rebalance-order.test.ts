// Order under incremental rebalancing (KIP-848): members join one by one while keyed events flow,
// and partitions move between them one at a time. A moved partition's in-flight delivery settles or
// yields before its next owner starts, so a minimal stage that appends each event's sequence number
// to its key's document in MongoDB (no guard of its own) sees every key's events once and in order.
import { setTimeout as sleep } from 'node:timers/promises';
import { platformaticClient } from '../../src/kafka/platformatic-client';
import { platformaticBase } from '../../src/kafka/platformatic-options';
import type { ClientBatch, KafkaClient } from '../../src/kafka/types';
import { cleanupAll, env, eventually, freshDb, freshTopic, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

const KEYS = 30;

test('members joining one by one under load: every key applies each event once, in order', async () => {
  const client: KafkaClient = platformaticClient(
    platformaticBase({ kafkaBrokers: env('KAFKA_BROKERS').split(',') }, uniqueName('plt-order')),
    'consumer',
  );
  const topic = await freshTopic('plt-order', 6);
  const { db } = await freshDb('pltorder');
  const table = db.collection<{ _id: string; seqs: number[] }>('seqs');
  const groupId = uniqueName('plt-order-g');

  // The stage: rounds of five events, each round one unordered bulk write, then a commit.
  const stage = async (b: ClientBatch) => {
    for (let i = 0; i < b.messages.length && b.active(); i += 5) {
      const round = b.messages.slice(i, i + 5);
      await table.bulkWrite(
        round.map((m) => ({
          updateOne: {
            filter: { _id: m.key!.toString() },
            update: { $push: { seqs: Number(m.value!.toString()) } },
            upsert: true,
          },
        })),
        { ordered: true },
      );
      await sleep(15); // work in flight while the group moves partitions
      await b.commit(String(BigInt(round[round.length - 1]!.offset) + 1n));
    }
  };

  const joins: { member: number; partitions: number[] }[] = [];
  const start = async (n: number) => {
    const member = client.member(
      { groupId, topics: [topic], startAt: 'earliest', partitionsAtOnce: 2, fetchWaitMs: 100 },
      { onJoin: (assigned) => joins.push({ member: n, partitions: assigned.flatMap((a) => a.partitions) }) },
    );
    onCleanup(() => member.stop());
    await member.start(stage);
  };

  const sender = client.sender({ sendRetries: 3, requestTimeoutMs: 10_000 });
  onCleanup(() => sender.disconnect());
  let seq = 0;
  const produce = async (ticks: number) => {
    for (let t = 0; t < ticks; t++) {
      seq++;
      const s = String(seq);
      await sender.send(
        Array.from({ length: KEYS }, (_, k) => ({
          topic,
          key: `key-${k}`,
          value: Buffer.from(s),
          headers: {},
          eventId: `${k}-${s}`,
        })),
      );
      await sleep(20);
    }
  };

  await start(1);
  await produce(40);
  await start(2);
  await produce(40);
  await start(3);
  await produce(40);

  const expected = Array.from({ length: seq }, (_, i) => i + 1);
  const rows = await eventually(
    async () => {
      const all = await table.find().toArray();
      return all.length === KEYS && all.every((r) => r.seqs.length >= seq) ? all : undefined;
    },
    60_000,
    'every key to reach the last sequence number',
  );
  for (const r of rows) expect({ key: r._id, seqs: r.seqs }).toEqual({ key: r._id, seqs: expected });

  // The group did move partitions: the first member ended with fewer than all six, and each later
  // member was given some.
  const last = (n: number) => joins.filter((j) => j.member === n).pop()?.partitions ?? [];
  expect(last(1).length).toBeLessThan(6);
  expect(last(2).length).toBeGreaterThan(0);
  expect(last(3).length).toBeGreaterThan(0);
});
