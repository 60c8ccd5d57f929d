// A KIP-848 member whose session lapsed (its event loop blocked past the session timeout, as a hot
// retry loop did during the registry-down fault) is removed by the coordinator; its next heartbeat is
// answered UNKNOWN_MEMBER_ID. It must join again and take its partitions back. The library resets its
// epoch only on FENCED_MEMBER_EPOCH and kept heartbeating the dead member: the processor consumed
// nothing more (registry-down on platformatic: 12 partitions stalled for good).
import { platformaticClient } from '../../src/kafka/platformatic-client';
import { platformaticBase } from '../../src/kafka/platformatic-options';
import { cleanupAll, env, eventually, freshTopic, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

test('a member whose session lapsed joins again and consumes what came meanwhile', async () => {
  const client = platformaticClient(
    platformaticBase({ kafkaBrokers: env('KAFKA_BROKERS').split(',') }, uniqueName('plt-lapse')),
    'consumer',
  );
  const topic = await freshTopic('plt-lapse', 2);
  const sender = client.sender({ sendRetries: 3, requestTimeoutMs: 10_000 });
  onCleanup(() => sender.disconnect());
  await sender.connect();
  const send = (i: number) =>
    sender.send([{ topic, key: `k${i}`, value: Buffer.from(String(i)), headers: {}, eventId: `e${i}` }]);
  await send(0);

  const groupId = uniqueName('plt-lapse');
  const member = client.member({
    groupId,
    topics: [topic],
    startAt: 'earliest',
    fetchWaitMs: 100,
    sessionTimeoutMs: 6000,
    heartbeatIntervalMs: 500,
  });
  onCleanup(() => member.stop());
  const seen: string[] = [];
  await member.start(async (b) => {
    for (const m of b.messages) seen.push(m.value!.toString());
    await b.commit(String(BigInt(b.messages[b.messages.length - 1]!.offset) + 1n));
  });
  await eventually(async () => (seen.includes('0') ? true : undefined), 20_000, 'the first record');

  // Nothing runs for longer than the session: no heartbeat leaves, the coordinator removes the member.
  const until = Date.now() + 9000;
  while (Date.now() < until) {
    /* blocked */
  }
  await send(1);
  await eventually(
    async () => (seen.includes('1') ? true : undefined),
    40_000,
    'the record sent after the lapse',
  );
  expect(seen.filter((v) => v === '1')).toHaveLength(1);
  // And it is a member again, holding both partitions, as the coordinator sees it: fetching what it no
  // longer owns is not enough (a commit may rejoin it, a transaction's offsets would be refused).
  const offsets = client.offsets();
  onCleanup(() => offsets.close());
  await eventually(
    async () => {
      const g = (await offsets.groups([groupId])).get(groupId);
      return g?.state === 'Stable' && g.members === 1 && g.assigned[0] === 2 ? true : undefined;
    },
    30_000,
    'the member listed again with both partitions',
  );
});
