// The stage groups' membership as the coordinator reports it, read through Keyflow's own client
// (`OffsetsReader.groups`), so a consumer-protocol (KIP-848) group is described with ConsumerGroupDescribe
// and a classic one with DescribeGroups. kafkajs's DescribeGroups alone calls a KIP-848 group Dead with no
// members, which made every wait on membership pass or time out wrongly on @platformatic/kafka.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Arena } from '../bench/arena';
import type { GroupState, OffsetsReader } from '../kafka/types';

/** What the fault suite reads of membership: the client's group description. */
export type GroupsPort = Pick<OffsetsReader, 'groups'>;

async function describe(port: GroupsPort, arena: Arena): Promise<Map<string, GroupState>> {
  return port.groups(Object.values(arena.groups));
}

/** Members of the two stage groups that the coordinator still lists. */
export async function groupMembers(port: GroupsPort, arena: Arena): Promise<number> {
  let n = 0;
  for (const g of (await describe(port, arena)).values()) n += g.members;
  return n;
}

/** True when every stage group is Stable with `members` members, each holding a partition. */
export function settledAt(groups: Map<string, GroupState>, names: string[], members: number): boolean {
  return names.every((name) => {
    const g = groups.get(name);
    return (
      g !== undefined &&
      g.state === 'Stable' &&
      g.members === members &&
      g.assigned.length === members &&
      g.assigned.every((n) => n > 0)
    );
  });
}

/**
 * Resolves with the epoch ms both stage groups were first seen Stable with `members` members each, every
 * member holding partitions; undefined at the deadline.
 */
export async function untilStable(
  port: GroupsPort,
  arena: Arena,
  members: number,
  timeoutMs = 120_000,
): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  const names = Object.values(arena.groups);
  while (Date.now() < deadline) {
    const groups = await port.groups(names).catch(() => new Map<string, GroupState>());
    if (settledAt(groups, names, members)) return Date.now();
    await sleep(100);
  }
  return undefined;
}

/** `group: state, n members (partitions each)`, for a note when the groups do not settle. */
export async function groupStates(port: GroupsPort, arena: Arena): Promise<string> {
  const groups = await describe(port, arena);
  return [...groups.entries()]
    .map(
      ([id, g]) =>
        `${id.split('.').pop()}: ${g.state}, ${g.members} members (${g.assigned.join(', ')} partitions)`,
    )
    .join('; ');
}
