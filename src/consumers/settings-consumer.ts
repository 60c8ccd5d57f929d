// Reads the compacted tenant-settings topic from its beginning into a TenantSettingsCache and keeps
// following it; `ready` resolves once every partition is read up to where it ended at start.
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer } from 'kafkajs';
import { classify } from '../errors';
import type { Logger } from '../logger';
import { TENANT_SETTINGS_TOPIC } from '../settings/tenant-settings';

export interface SettingsConsumerOptions {
  topic?: string;
  log: Logger;
  /** Reads the end offsets at start, to know when the cache has caught up. */
  admin: Admin;
  /** Turns a record value into `{tenantId, settings}`; default JSON. Pass the registry codec for Avro. */
  decode?: (value: Buffer) => Promise<unknown> | unknown;
}

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

/**
 * `consumer` must be created with a group id from settingsGroupId() and not yet subscribed; this
 * function connects it, subscribes from the beginning and applies every record to `cache`.
 */
export async function followTenantSettings(
  consumer: Consumer,
  cache: { apply(key: string, value: unknown): unknown },
  opts: SettingsConsumerOptions,
): Promise<SettingsFollower> {
  const topic = opts.topic ?? TENANT_SETTINGS_TOPIC;
  const decode = opts.decode ?? ((v: Buffer) => JSON.parse(v.toString('utf8')) as unknown);
  const ends = await opts.admin.fetchTopicOffsets(topic);
  // Next offset still to read, per partition, against the end offset seen at start.
  const behind = new Map<number, bigint>();
  for (const p of ends) if (BigInt(p.high) > BigInt(p.low)) behind.set(p.partition, BigInt(p.high));

  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const check = () => {
    if (behind.size === 0) markReady();
  };
  check();

  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, heartbeat }) => {
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
        if (m.value !== null) {
          try {
            value = await decode(m.value);
          } catch (err) {
            // Not decodable means invalid: the cache refuses it and keeps the previous settings.
            const e = classify(err);
            opts.log.warn(
              { tenantId: key, offset: m.offset, code: e.code },
              'tenant-settings record not decodable',
            );
            value = { undecodable: true };
          }
        }
        cache.apply(key, value);
      }
      const target = behind.get(batch.partition);
      if (target !== undefined && BigInt(batch.lastOffset()) + 1n >= target) {
        behind.delete(batch.partition);
        check();
      }
      await heartbeat();
    },
  });

  let closing: Promise<void> | undefined;
  return {
    ready,
    isCaughtUp: () => behind.size === 0,
    close() {
      closing ??= consumer.disconnect();
      return closing;
    },
  };
}
