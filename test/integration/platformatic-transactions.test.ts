// Exactly-once through the @platformatic/kafka adapter, against the real broker: a batch's transact()
// makes its records and its input offset visible together to a read_committed reader; a transaction
// the broker refuses a record of aborts, and nothing of it shows; a member that lost its partitions
// to another member gets PARTITION_FENCED, and what it sent never becomes visible; a keyed record lands
// on the partition a Java producer picks, sent in a transaction as sent plainly.
import { Partitioners } from 'kafkajs';
import { platformaticClient } from '../../src/kafka/platformatic-client';
import { platformaticBase } from '../../src/kafka/platformatic-options';
import type { ClientBatch, GroupOptions, KafkaClient } from '../../src/kafka/types';
import type { WireRecord } from '../../src/producers/types';
import { cleanupAll, env, eventually, freshTopic, onCleanup, uniqueName } from '../helpers';

afterAll(cleanupAll);

function client(): KafkaClient {
  return platformaticClient(
    platformaticBase({ kafkaBrokers: env('KAFKA_BROKERS').split(',') }, uniqueName('plt-tx')),
    'consumer',
  );
}

const record = (topic: string, value: string | Buffer, partition?: number): WireRecord => ({
  topic,
  key: 'k',
  value: Buffer.isBuffer(value) ? value : Buffer.from(value),
  headers: {},
  eventId: uniqueName('e'),
  ...(partition !== undefined ? { partition } : {}),
});

async function send(c: KafkaClient, records: WireRecord[]): Promise<void> {
  const sender = c.sender({ sendRetries: 3, requestTimeoutMs: 10_000 });
  onCleanup(() => sender.disconnect());
  await sender.send(records);
}

async function member(
  c: KafkaClient,
  groupId: string,
  topic: string,
  onBatch: (b: ClientBatch) => Promise<void>,
  extra: Partial<GroupOptions> = {},
): Promise<void> {
  const m = c.member({
    groupId,
    topics: [topic],
    startAt: 'earliest',
    fetchWaitMs: 100,
    partitionsAtOnce: 2,
    transactions: { idPrefix: uniqueName('tx') },
    ...extra,
  });
  onCleanup(() => m.stop());
  await m.start(onBatch);
}

const next = (b: ClientBatch) => b.end ?? String(BigInt(b.messages[b.messages.length - 1]!.offset) + 1n);

/** Values a read_committed member of a fresh group reads from `topic`, once `enough` says it has all. */
async function readCommitted(
  c: KafkaClient,
  topic: string,
  enough: (values: string[]) => boolean,
): Promise<string[]> {
  const values: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  await member(c, uniqueName('plt-tx-reader'), topic, async (b) => {
    values.push(...b.messages.map((m) => m.value!.toString()));
    // Committed, or the member hands the same records again.
    await b.commit(next(b));
    if (enough(values)) done();
  });
  await finished;
  return values;
}

test('records and the input offset of one transaction become visible together', async () => {
  const c = client();
  const input = await freshTopic('plt-tx-in', 1);
  const output = await freshTopic('plt-tx-out', 1);
  await send(
    c,
    ['a', 'b', 'c'].map((v) => record(input, v)),
  );
  const groupId = uniqueName('plt-tx-g');
  let done!: () => void;
  const transacted = new Promise<void>((r) => (done = r));
  await member(c, groupId, input, async (b) => {
    await b.transact!(
      b.messages.map((m) => record(output, `${m.value!.toString()}!`)),
      next(b),
    );
    if (b.messages.some((m) => m.offset === '2')) done();
  });
  await transacted;

  expect(await readCommitted(c, output, (v) => v.length >= 3)).toEqual(['a!', 'b!', 'c!']);
  const offsets = c.offsets();
  onCleanup(() => offsets.close());
  expect(await offsets.committed(groupId, input)).toEqual(new Map([[0, 3n]]));
});

test('a transaction with a record the broker refuses aborts: its other records never show, its offset stays', async () => {
  const c = client();
  const input = await freshTopic('plt-tx-in', 1);
  const output = await freshTopic('plt-tx-out', 2, { 'max.message.bytes': '2000' });
  await send(c, [record(input, 'x')]);
  const groupId = uniqueName('plt-tx-g');
  const offsets = c.offsets();
  onCleanup(() => offsets.close());
  let refused: unknown;
  let committedAfterAbort: Map<number, bigint> | undefined;
  let done!: () => void;
  const transacted = new Promise<void>((r) => (done = r));
  await member(c, groupId, input, async (b) => {
    refused = await b.transact!(
      [record(output, 'aborted', 0), record(output, Buffer.alloc(10_000, 1), 1)],
      next(b),
    ).then(
      () => undefined,
      (err: unknown) => err,
    );
    committedAfterAbort = await offsets.committed(groupId, input);
    // The member goes on: the next transaction of the same batch commits.
    await b.transact!([record(output, 'after', 0)], next(b));
    done();
  });
  await transacted;

  expect(refused).toMatchObject({ code: 'RECORD_TOO_LARGE', retriable: false });
  expect(committedAfterAbort).toEqual(new Map());
  // 'after' follows the aborted record on partition 0: once a read_committed reader has it, the
  // aborted one is settled and filtered.
  expect(await readCommitted(c, output, (v) => v.includes('after'))).toEqual(['after']);
  expect(await offsets.committed(groupId, input)).toEqual(new Map([[0, 1n]]));
});

test('a member that lost its partitions to another gets PARTITION_FENCED, and its records never show', async () => {
  const c = client();
  const input = await freshTopic('plt-tx-in', 2);
  const output = await freshTopic('plt-tx-out', 1);
  await send(c, [record(input, 'p0', 0), record(input, 'p1', 1)]);
  const groupId = uniqueName('plt-tx-g');

  // Member A takes both partitions and stalls in its deliveries past its rebalance timeout, so the
  // coordinator fences it and hands its partitions on.
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let held = 0;
  const heldResults: unknown[] = [];
  await member(
    c,
    groupId,
    input,
    async (b) => {
      if (held < 2 && heldResults.length === 0) {
        held++;
        await released;
        heldResults.push(
          await b.transact!(
            b.messages.map((m) => record(output, `A-held:${m.value!.toString()}`)),
            next(b),
          ).then(
            () => 'committed',
            (err: unknown) => err,
          ),
        );
        return;
      }
      await b.transact!(
        b.messages.map((m) => record(output, `A:${m.value!.toString()}`)),
        next(b),
      );
    },
    { rebalanceTimeoutMs: 3000, sessionTimeoutMs: 3000, heartbeatIntervalMs: 500 },
  );
  await eventually(async () => (held === 2 ? true : undefined), 20_000, 'member A to hold both partitions');

  let byB = 0;
  await member(c, groupId, input, async (b) => {
    await b.transact!(
      b.messages.map((m) => record(output, `B:${m.value!.toString()}`)),
      next(b),
    );
    byB++;
  });
  await eventually(async () => (byB > 0 ? true : undefined), 40_000, 'member B to transact a batch');

  release();
  await eventually(async () => (heldResults.length === 2 ? true : undefined), 20_000, 'A’s held batches');
  for (const r of heldResults) expect(r).toMatchObject({ code: 'PARTITION_FENCED', retriable: false });

  const offsets = c.offsets();
  onCleanup(() => offsets.close());
  await eventually(
    async () => {
      const committed = await offsets.committed(groupId, input);
      return committed.get(0) === 1n && committed.get(1) === 1n ? true : undefined;
    },
    30_000,
    'both input partitions committed',
  );
  // A plain record after everything: once the reader has it, every transaction before it is settled.
  await send(c, [record(output, 'end')]);
  const values = await readCommitted(c, output, (v) => v.includes('end'));
  expect(values.filter((v) => v.startsWith('A-held'))).toEqual([]);
  expect(values.map((v) => v.split(':').pop()).sort()).toEqual(['end', 'p0', 'p1']);
});

test('a keyed record lands where a Java producer puts it, sent in a transaction as sent plainly', async () => {
  const c = client();
  const input = await freshTopic('plt-tx-in', 1);
  const output = await freshTopic('plt-tx-out', 6);
  const keys = Array.from({ length: 40 }, (_, i) => `lead-${i}`);
  const keyed = (via: string) => keys.map((key) => ({ ...record(output, via), key }));
  await send(c, [record(input, 'x'), ...keyed('plain')]);
  let done!: () => void;
  const transacted = new Promise<void>((r) => (done = r));
  await member(c, uniqueName('plt-tx-g'), input, async (b) => {
    await b.transact!(keyed('transacted'), next(b));
    done();
  });
  await transacted;

  const seen: string[] = [];
  let all!: () => void;
  const read = new Promise<void>((r) => (all = r));
  await member(c, uniqueName('plt-tx-reader'), output, async (b) => {
    for (const m of b.messages) seen.push(`${m.value!.toString()} ${m.key!.toString()} ${b.partition}`);
    await b.commit(next(b));
    if (seen.length >= 2 * keys.length) all();
  });
  await read;

  // kafkajs's default partitioner is the Java client's (murmur2, masked positive, modulo the count).
  const java = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: 6 }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
  const expected = (via: string) =>
    keys.map(
      (key) => `${via} ${key} ${java({ topic: output, partitionMetadata, message: { key, value: null } })}`,
    );
  expect(seen.sort()).toEqual([...expected('plain'), ...expected('transacted')].sort());
});
