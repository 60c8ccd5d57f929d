// KIP-447's other half on the @platformatic/kafka adapter, against the real broker: a member given a
// partition while another producer's transaction holds an offset commit to it pending (a zombie
// stopped between adding its offset and committing) waits for that transaction, then starts where it
// committed. Before, it started from the offset before and did the zombie's records a second time.
import { platformaticClient } from '../../src/kafka/platformatic-client';
import { platformaticBase } from '../../src/kafka/platformatic-options';
import type { KafkaClient } from '../../src/kafka/types';
import type { WireRecord } from '../../src/producers/types';
import { cleanupAll, env, freshTopic, kafkaClient, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

function client(): KafkaClient {
  return platformaticClient(
    platformaticBase({ kafkaBrokers: env('KAFKA_BROKERS').split(',') }, uniqueName('plt-stable')),
    'consumer',
  );
}

test('a partition whose offset commit a transaction holds pending starts where that transaction commits it', async () => {
  const c = client();
  const input = await freshTopic('plt-stable-in', 1);
  const records: WireRecord[] = ['a', 'b', 'c', 'd', 'e', 'f'].map((v) => ({
    topic: input,
    key: 'k',
    value: Buffer.from(v),
    headers: {},
    eventId: uniqueName('e'),
  }));
  const sender = c.sender({ sendRetries: 3, requestTimeoutMs: 10_000 });
  onCleanup(() => sender.disconnect());
  await sender.send(records);
  const groupId = uniqueName('plt-stable-g');

  // The zombie: it did a..d, added their offset to its transaction, and stopped before committing. On a
  // stack started moments ago the group's coordinator may still be loading (NOT_COORDINATOR), which
  // kafkajs's transactional offset commit does not retry: a fresh producer and transaction each time.
  const zombieOpen = async () => {
    for (let attempt = 1; ; attempt++) {
      const zombie = kafkaClient().producer({
        transactionalId: uniqueName('plt-stable-zombie'),
        idempotent: true,
        maxInFlightRequests: 1,
      });
      await zombie.connect();
      onCleanup(() => zombie.disconnect());
      const tx = await zombie.transaction();
      try {
        await tx.sendOffsets({
          consumerGroupId: groupId,
          topics: [{ topic: input, partitions: [{ partition: 0, offset: '4' }] }],
        });
        return tx;
      } catch (err) {
        await tx.abort().catch(() => undefined);
        if (attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };
  const pending = await zombieOpen();

  const delivered: string[] = [];
  let joined!: () => void;
  const assigned = new Promise<void>((r) => (joined = r));
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const m = c.member(
    {
      groupId,
      topics: [input],
      startAt: 'earliest',
      fetchWaitMs: 100,
      transactions: { idPrefix: uniqueName('tx') },
    },
    { onJoin: (a) => a.some((t) => t.partitions.length > 0) && joined() },
  );
  onCleanup(() => m.stop());
  await m.start(async (b) => {
    delivered.push(...b.messages.map((x) => x.value!.toString()));
    const last = b.messages[b.messages.length - 1]!.offset;
    await b.transact!([], b.end ?? String(BigInt(last) + 1n));
    if (delivered.includes('f')) done();
  });
  // The member owns the partition, and the library has read its committed offset (none yet, the
  // zombie's is pending); then the zombie wakes and commits.
  await assigned;
  await pending.commit();
  await finished;

  expect(delivered).toEqual(['e', 'f']);
  const offsets = c.offsets();
  onCleanup(() => offsets.close());
  expect(await offsets.committed(groupId, input)).toEqual(new Map([[0, 6n]]));
});
