// Reads the compacted tenant-settings topic from its beginning into a TenantSettingsCache and keeps
// following it; `ready` resolves once every partition is read up to where it ended at start.
import { randomUUID } from 'node:crypto';
import { classify } from '../errors';
import type { KafkaClient, OffsetsReader } from '../kafka/types';
import type { Logger } from '../logger';
import { TENANT_SETTINGS_TOPIC } from '../settings/tenant-settings';
import { heartbeats } from './group';
import { retrying, type RetryPolicy } from './retry';

/** The follower's heartbeat interval while it works on a batch (the client's default). */
const HEARTBEAT_MS = 3_000;

export interface SettingsConsumerOptions {
  topic?: string;
  log: Logger;
  /** The log bounds at start (the client's offsets reader), to know when the cache has caught up. */
  bounds: OffsetsReader['bounds'];
  /** Consumer group id prefix (see settingsGroupId). */
  clientId?: string;
  /** Turns a record value into `{tenantId, settings}`; default JSON. Pass the registry codec for Avro. */
  decode?: (value: Buffer) => Promise<unknown> | unknown;
  /** Backoff of a decode that failed for a passing reason (default 200 ms doubling to 10 s). */
  retry?: RetryPolicy;
}

const SETTINGS_RETRY: RetryPolicy = { maxAttempts: Infinity, baseMs: 200, maxMs: 10_000 };

export interface SettingsFollower {
  /** Resolves once the cache holds everything the topic held at start. */
  ready: Promise<void>;
  isCaughtUp(): boolean;
  /** Stops following and disconnects the consumer; safe to call more than once. */
  close(): Promise<void>;
}

/**
 * A group id of its own for each process: every instance must fold the whole topic, so instances must
 * not share partitions, and a fresh group starts from the beginning. Nothing is committed.
 */
export function settingsGroupId(prefix = 'keyflow'): string {
  return `${prefix}-settings-${randomUUID()}`;
}

/** Joins a group of its own (settingsGroupId), reads the topic from its beginning into `cache`. */
export async function followTenantSettings(
  kafka: Pick<KafkaClient, 'member'>,
  cache: { apply(key: string, value: unknown): unknown },
  opts: SettingsConsumerOptions,
): Promise<SettingsFollower> {
  const topic = opts.topic ?? TENANT_SETTINGS_TOPIC;
  const decode = opts.decode ?? ((v: Buffer) => JSON.parse(v.toString('utf8')) as unknown);
  const ends = await opts.bounds(topic);
  // Next offset still to read, per partition, against the end offset seen at start.
  const behind = new Map<number, bigint>();
  for (const [partition, b] of ends) if (b.high > b.low) behind.set(partition, b.high);

  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const check = () => {
    if (behind.size === 0) markReady();
  };
  check();

  // A record whose decode failed for a passing reason (the registry unreachable) is decoded again until
  // it succeeds: dropping it would leave a tenant on old settings until its next change. Meanwhile the
  // follower is not caught up, so readiness says so.
  let waiting = 0;
  let stopping = false;
  const decodeOrWait = async (bytes: Buffer, tenantId: string, offset: string): Promise<unknown> => {
    let counted = false;
    try {
      return await retrying(async () => decode(bytes), {
        policy: opts.retry ?? SETTINGS_RETRY,
        keepGoing: () => !stopping,
        onRetry: (err, attempt, delay) => {
          if (!counted) waiting++;
          counted = true;
          const code = classify(err).code;
          opts.log.warn(
            { tenantId, offset, code, attempt, delay },
            'tenant-settings record not decodable yet; retrying',
          );
        },
      });
    } catch (err) {
      // Not decodable means invalid: the cache refuses it and keeps the previous settings.
      opts.log.warn({ tenantId, offset, code: classify(err).code }, 'tenant-settings record not decodable');
      return { undecodable: true };
    } finally {
      if (counted) waiting--;
    }
  };

  const member = kafka.member({
    groupId: settingsGroupId(opts.clientId),
    topics: [topic],
    startAt: 'earliest',
    readOnly: true,
  });
  await member.start(async (batch) => {
    // The membership stays alive while a record waits for its decode.
    const stop = heartbeats(() => batch.heartbeat(), HEARTBEAT_MS, opts.log);
    try {
      for (const m of batch.messages) {
        const key = m.key?.toString('utf8');
        if (key === undefined) {
          opts.log.warn(
            { topic, partition: batch.partition, offset: m.offset },
            'tenant-settings record without key; skipped',
          );
          continue;
        }
        let value: unknown = null;
        if (m.value !== null) value = await decodeOrWait(m.value, key, m.offset);
        cache.apply(key, value);
      }
      const target = behind.get(batch.partition);
      const last = batch.messages[batch.messages.length - 1]!.offset;
      if (target !== undefined && BigInt(last) + 1n >= target) {
        behind.delete(batch.partition);
        check();
      }
    } finally {
      stop();
    }
  });

  let closing: Promise<void> | undefined;
  return {
    ready,
    isCaughtUp: () => behind.size === 0 && waiting === 0,
    close() {
      stopping = true;
      closing ??= member.stop();
      return closing;
    },
  };
}
