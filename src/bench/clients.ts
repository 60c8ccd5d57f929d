// Both Kafka clients on the same records, in the same run: a raw produce through the adapter's sender
// (idempotent, acks=all, 1,000 records a send) and a raw consume (a fresh group draining that topic,
// committing each batch). No store and no engine: what each client costs on its own, beside the
// pipeline figures each client gets (the `pipelineOtherClient` contestant).
import type { Config } from '../config';
import { kafkaClient } from '../kafka/client';
import type { WireRecord } from '../producers/types';
import { arenaNames, closeArena, openArena, wireRecords, type BenchContext } from './arena';
import { measurePeakRss } from './rss';

export const KAFKA_CLIENTS = ['kafkajs', 'platformatic'] as const;
export type KafkaClientName = (typeof KAFKA_CLIENTS)[number];

/** The client the configuration does not pick: the bench runs the pipeline on it too. */
export function otherClient(config: Pick<Config, 'kafkaAdapter'>): KafkaClientName {
  return config.kafkaAdapter === 'platformatic' ? 'kafkajs' : 'platformatic';
}

const round = (x: number) => Math.round(x);

/** Raw produce and consume rates (events/s) and peak RSS (MB) of each client, as report figures. */
export async function measureClients(ctx: BenchContext): Promise<Record<string, number>> {
  const figures: Record<string, number> = {};
  // The scenario's own records, encoded once: both clients carry the same bytes.
  const arena = await openArena(ctx, 'raw');
  let records: WireRecord[];
  try {
    records = await wireRecords(ctx, arena, ctx.set.events);
  } finally {
    await closeArena(ctx, arena);
  }
  for (const name of KAFKA_CLIENTS) {
    if (ctx.aborted()) break;
    ctx.progress.phase(`${name}: raw produce and consume of ${records.length} records`, records.length * 2);
    const { value, rss } = await measurePeakRss(() => produceAndConsume(ctx, name, records));
    ctx.progress.end(`produce ${round(value.produce)}/s, consume ${round(value.consume)}/s`);
    figures[`${name}: raw produce (events/s)`] = round(value.produce);
    figures[`${name}: raw consume (events/s)`] = round(value.consume);
    figures[`${name}: peak RSS, raw produce and consume (MB)`] = round(rss.peakMb);
  }
  return figures;
}

async function produceAndConsume(
  ctx: BenchContext,
  name: KafkaClientName,
  records: readonly WireRecord[],
): Promise<{ produce: number; consume: number }> {
  const config: Config = { ...ctx.config, kafkaAdapter: name };
  const client = kafkaClient(config, ctx.log, `${ctx.config.kafkaClientId}-bench-${name}`);
  const { prefix } = arenaNames(ctx, `raw-${name}`);
  const topic = `${prefix}.records`;
  const admin = client.admin();
  await admin.connect();
  try {
    await admin.ensureTopics(
      [
        {
          name: topic,
          partitions: ctx.scenario.partitions,
          replicationFactor: 1,
          cleanupPolicy: 'delete',
          key: 'id',
        },
      ],
      ctx.log,
    );
    const sender = client.sender({ sendRetries: 5, requestTimeoutMs: 30_000 });
    await sender.connect();
    const mine = records.map((r) => ({ ...r, topic, partition: undefined }));
    let started = Date.now();
    try {
      for (let i = 0; i < mine.length; i += 1000) {
        await sender.send(mine.slice(i, i + 1000));
        ctx.progress.tick(Math.min(1000, mine.length - i));
      }
    } finally {
      await sender.disconnect();
    }
    const produce = (mine.length / (Date.now() - started)) * 1000;

    const member = client.member({
      groupId: `${prefix}.raw-consumer`,
      topics: [topic],
      startAt: 'earliest',
      partitionsAtOnce: ctx.scenario.partitions,
      fetchWaitMs: 100,
    });
    let seen = 0;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    started = Date.now();
    await member.start(async (b) => {
      seen += b.messages.length;
      ctx.progress.tick(b.messages.length);
      await b.commit(String(BigInt(b.messages[b.messages.length - 1]!.offset) + 1n));
      if (seen >= mine.length) finish();
    });
    await finished;
    const consume = (mine.length / (Date.now() - started)) * 1000;
    await member.stop();
    return { produce, consume };
  } finally {
    await admin.disconnect();
    const kadmin = ctx.kafka.admin();
    await kadmin.connect();
    await kadmin.deleteTopics({ topics: [topic], timeout: 30_000 }).catch(() => undefined);
    await kadmin.deleteGroups([`${prefix}.raw-consumer`]).catch(() => undefined);
    await kadmin.disconnect();
  }
}
