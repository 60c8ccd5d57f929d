// The kafkajs adapter of Keyflow's client interface (types.ts): one place that knows kafkajs's
// connection, retry and logging settings, and builds the group member, the record sender, the
// offsets reader and the topic admin over one kafkajs instance.
import {
  AssignerProtocol,
  Kafka,
  logLevel as kafkaLogLevel,
  type Admin,
  type GroupDescription,
  type LogEntry,
} from 'kafkajs';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { TopicSpec } from '../topology/types';
import { kafkajsCall } from './kafkajs-errors';
import { KafkajsGroupMember } from './kafkajs-group';
import { dropKafkajsNegativeDelayWarning } from './kafkajs-node-warnings';
import { isRetriedResponse } from './kafkajs-log';
import { KafkajsSender } from './kafkajs-producer';
import { ensureTopics } from './kafkajs-topics';
import type { KafkaClient, OffsetsReader, TopicAdmin } from './types';

dropKafkajsNegativeDelayWarning();

/** kafkajs logs through pino, at warn and above unless LOG_LEVEL asks for more; retried responses at debug. */
function kafkaLogger(log: Logger) {
  return () =>
    ({ level, log: entry }: LogEntry) => {
      const { message, ...rest } = entry;
      const fields = { ...rest, component: 'kafkajs' };
      if (isRetriedResponse(message, rest)) log.debug(fields, message);
      else if (level === kafkaLogLevel.ERROR) log.error(fields, message);
      else if (level === kafkaLogLevel.WARN) log.warn(fields, message);
      else log.debug(fields, message);
    };
}

/** A kafkajs instance with Keyflow's settings, for the bench and fault rigs that drive kafkajs directly. */
export function kafkajsInstance(config: Config, log: Logger, clientId = config.kafkaClientId): Kafka {
  return new Kafka({
    clientId,
    brokers: config.kafkaBrokers,
    logLevel: kafkaLogLevel.WARN,
    logCreator: kafkaLogger(log),
    connectionTimeout: 5_000,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 10_000 },
  });
}

/** The client interface over a kafkajs instance (tests and rigs bring their own). */
/** Partitions a classic group's member holds, from its encoded assignment (0 before the sync). */
function assignedCount(m: GroupDescription['members'][number]): number {
  const a =
    m.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null;
  return Object.values(a?.assignment ?? {}).reduce((n, ps) => n + ps.length, 0);
}

export function kafkajsClient(kafka: Kafka): KafkaClient {
  return {
    member: (opts, events) => new KafkajsGroupMember(kafka, opts, events),
    sender: (opts) => new KafkajsSender(kafka, opts),
    offsets: () => kafkajsOffsets(kafka),
    admin: () => kafkajsAdmin(kafka.admin()),
  };
}

function kafkajsAdmin(admin: Admin): TopicAdmin {
  return {
    connect: () => kafkajsCall(() => admin.connect()),
    disconnect: () => admin.disconnect(),
    ensureTopics: (topics: TopicSpec[], log: Logger) => kafkajsCall(() => ensureTopics(admin, topics, log)),
  };
}

/**
 * Committed offsets, log bounds and group states from one admin client connected on first use: the
 * one reader for the retention watch and the lag collector.
 */
export function kafkajsOffsets(kafka: Kafka): OffsetsReader {
  let admin: Promise<Admin> | undefined;
  const connected = () =>
    (admin ??= (async () => {
      const a = kafka.admin();
      await a.connect();
      return a;
    })().catch((err: unknown) => {
      admin = undefined;
      throw err;
    }));
  return {
    committed: (groupId, topic) =>
      kafkajsCall(async () => {
        const [t] = await (await connected()).fetchOffsets({ groupId, topics: [topic] });
        const out = new Map<number, bigint>();
        for (const p of t?.partitions ?? [])
          if (Number(p.offset) >= 0) out.set(p.partition, BigInt(p.offset));
        return out;
      }),
    // kafkajs's ListOffsets (v2+) asks read_committed: `high` is the last stable offset, so records of
    // a transaction still open do not count as lag, and a committed one's marker is inside the bound.
    bounds: (topic) =>
      kafkajsCall(async () => {
        const parts = await (await connected()).fetchTopicOffsets(topic);
        return new Map(parts.map((p) => [p.partition, { low: BigInt(p.low), high: BigInt(p.high) }]));
      }),
    groups: (groupIds) =>
      kafkajsCall(async () => {
        const { groups } = await (await connected()).describeGroups(groupIds);
        return new Map(
          groups.map((g) => [
            g.groupId,
            { state: g.state, members: g.members.length, assigned: g.members.map(assignedCount) },
          ]),
        );
      }),
    async close() {
      const a = admin;
      admin = undefined;
      if (a) await (await a.catch(() => undefined))?.disconnect();
    },
  };
}
