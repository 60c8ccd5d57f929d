// Committed offsets, log bounds and group states through one @platformatic/kafka Admin, connected
// on first use: the one reader for the retention watch and the lag collector. A group that speaks
// the consumer protocol (KIP-848) is described with ConsumerGroupDescribe; DescribeGroups only knows
// classic groups and calls the others Dead.
import {
  Admin,
  consumerGroupDescribeV0,
  FindCoordinatorKeyTypes,
  kGetConnection,
  ListOffsetTimestamps,
  type Connection,
} from '@platformatic/kafka';
import { endKey, offsetsAt } from './log-ends';
import { platformaticCall } from './platformatic-errors';
import type { PlatformaticBase } from './platformatic-options';
import type { GroupState, OffsetsReader } from './types';

/** The Admin plus the one call its public surface lacks: describing consumer-protocol groups. */
export class KeyflowAdmin extends Admin {
  async describeConsumerGroups(groupIds: string[]): Promise<Map<string, GroupState>> {
    const out = new Map<string, GroupState>();
    const coordinators = await this.findCoordinator({
      keyType: FindCoordinatorKeyTypes.GROUP,
      keys: groupIds,
    });
    for (const c of coordinators) {
      const connection = await new Promise<Connection>((resolve, reject) =>
        this[kGetConnection]({ host: c.host, port: c.port }, (err, conn) =>
          err || !conn ? reject(err ?? new Error('no connection to the group coordinator')) : resolve(conn),
        ),
      );
      // One unknown group fails the whole answer; the answer still lists every group's own.
      const res = await consumerGroupDescribeV0.api
        .async(connection, [c.key], false)
        .catch((err: { response?: Awaited<ReturnType<typeof consumerGroupDescribeV0.api.async>> }) => {
          if (err.response?.groups) return err.response;
          throw err;
        });
      for (const g of res.groups)
        if (g.errorCode === 0)
          out.set(g.groupId, {
            state: g.groupState,
            members: g.members.length,
            assigned: g.members.map((m) =>
              m.assignment.topicPartitions.reduce((n, t) => n + t.partitions.length, 0),
            ),
          });
    }
    return out;
  }
}

export function platformaticOffsets(base: PlatformaticBase): OffsetsReader {
  let admin: KeyflowAdmin | undefined;
  const connected = () => (admin ??= new KeyflowAdmin({ ...base, clientId: `${base.clientId}-offsets` }));

  async function partitionsOf(topic: string): Promise<number[]> {
    const md = await connected().metadata({ topics: [topic] });
    const count = md.topics.get(topic)?.partitionsCount ?? 0;
    return Array.from({ length: count }, (_, i) => i);
  }

  return {
    committed: (groupId, topic) =>
      platformaticCall(async () => {
        const partitions = await partitionsOf(topic);
        const [g] = await connected().listConsumerGroupOffsets({
          groups: [{ groupId, topics: [{ name: topic, partitionIndexes: partitions }] }],
        });
        const out = new Map<number, bigint>();
        for (const t of g?.topics ?? [])
          for (const p of t.partitions)
            if (p.committedOffset >= 0n) out.set(p.partitionIndex, p.committedOffset);
        return out;
      }),
    // `high` is the last stable offset: with transactions, what a read_committed member can reach.
    bounds: (topic) =>
      platformaticCall(async () => {
        const partitions = await partitionsOf(topic);
        const asked = new Map([[topic, partitions]]);
        const [low, high] = await Promise.all([
          offsetsAt(connected(), asked, ListOffsetTimestamps.EARLIEST, false),
          offsetsAt(connected(), asked, ListOffsetTimestamps.LATEST, true),
        ]);
        const at = (m: Map<string, bigint>, p: number) => m.get(endKey(topic, p)) ?? 0n;
        return new Map(partitions.map((p) => [p, { low: at(low, p), high: at(high, p) }]));
      }),
    groups: (groupIds) =>
      platformaticCall(async () => {
        const a = connected();
        const classic = await a.describeGroups({ groups: groupIds });
        const out = new Map<string, GroupState>();
        const others: string[] = [];
        for (const id of groupIds) {
          const g = classic.get(id);
          if (g && g.protocolType !== '')
            out.set(id, {
              state: g.state,
              members: g.members.size,
              assigned: [...g.members.values()].map((m) =>
                [...(m.assignments?.values() ?? [])].reduce((n, a) => n + a.partitions.length, 0),
              ),
            });
          else others.push(id);
        }
        if (others.length > 0) {
          const described = await a.describeConsumerGroups(others);
          for (const id of others)
            out.set(
              id,
              described.get(id) ?? { state: classic.get(id)?.state ?? 'Dead', members: 0, assigned: [] },
            );
        }
        return out;
      }),
    async close() {
      const a = admin;
      admin = undefined;
      await a?.close().catch(() => undefined);
    },
  };
}
