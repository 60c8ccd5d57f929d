// Reads the compacted tenant-settings topic from its beginning into a TenantSettingsCache and keeps
// following it; `ready` resolves once every partition is read up to where it ended at start.
import { randomUUID } from 'node:crypto';
import { classify } from '../errors';
import type { Logger } from '../logger';
import type { KafkaClient } from '../producers/client';
import { TENANT_SETTINGS_TOPIC } from '../settings/tenant-settings';
import { GroupMember } from './group';

export interface SettingsConsumerOptions {
  topic?: string;
  log: Logger;
  /** The end offsets at start (an admin call), to know when the cache has caught up. */
  endOffsets: (topic: string) => Promise<{ partition: number; low: string; high: string }[]>;
  /** Consumer group id prefix (see settingsGroupId). */
  clientId?: string;
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

/** Joins a group of its own (settingsGroupId), reads the topic from its beginning into `cache`. */
export async function followTenantSettings(
  kafka: KafkaClient,
  cache: { apply(key: string, value: unknown): unknown },
  opts: SettingsConsumerOptions,
): Promise<SettingsFollower> {
  const topic = opts.topic ?? TENANT_SETTINGS_TOPIC;
  const decode = opts.decode ?? ((v: Buffer) => JSON.parse(v.toString('utf8')) as unknown);
  const ends = await opts.endOffsets(topic);
  // Next offset still to read, per partition, against the end offset seen at start.
  const behind = new Map<number, bigint>();
  for (const p of ends) if (BigInt(p.high) > BigInt(p.low)) behind.set(p.partition, BigInt(p.high));

  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const check = () => {
    if (behind.size === 0) markReady();
  };
  check();

  const member = new GroupMember(kafka, {
    groupId: settingsGroupId(opts.clientId),
    topics: [topic],
    fromBeginning: true,
  });
  await member.start(async (batch) => {
    {
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
      const last = batch.messages[batch.messages.length - 1]!.offset;
      if (target !== undefined && BigInt(last) + 1n >= target) {
        behind.delete(batch.partition);
        check();
      }
      await batch.heartbeat();
    }
  });

  let closing: Promise<void> | undefined;
  return {
    ready,
    isCaughtUp: () => behind.size === 0,
    close() {
      closing ??= member.stop();
      return closing;
    },
  };
}
