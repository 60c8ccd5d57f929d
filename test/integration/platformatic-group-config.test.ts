// Under KIP-848 the coordinator holds a group's session timeout: a member that joins sets Keyflow's
// settings on its group (consumer.session.timeout.ms, consumer.heartbeat.interval.ms). Without it a
// SIGKILLed processor's partitions waited the broker's 45 s for their next owner (processor-sigkill on
// platformatic: 46 s to recover, against 1.5 s on kafkajs). A value the broker refuses is logged with
// what to change, and the member still joins.
import { Admin, ConfigResourceTypes } from '@platformatic/kafka';
import { createLogger } from '../../src/logger';
import { platformaticClient } from '../../src/kafka/platformatic-client';
import { platformaticBase } from '../../src/kafka/platformatic-options';
import { cleanupAll, env, freshTopic, onCleanup, uniqueName, eventually } from '../helpers';

afterAll(cleanupAll);

const base = () => platformaticBase({ kafkaBrokers: env('KAFKA_BROKERS').split(',') }, uniqueName('plt-gc'));

async function groupConfigs(groupId: string): Promise<Map<string, string | null | undefined>> {
  const admin = new Admin({ ...base() });
  onCleanup(() => admin.close());
  const [described] = await admin.describeConfigs({
    resources: [{ resourceType: ConfigResourceTypes.GROUP, resourceName: groupId }],
  });
  return new Map(described!.configs.map((c) => [c.name, c.value]));
}

/** Starts a member of `groupId` with the given timeouts; resolves once it was handed a batch. */
async function memberRuns(
  groupId: string,
  timeouts: { sessionTimeoutMs: number; heartbeatIntervalMs: number },
  warnings: string[],
): Promise<void> {
  const topic = await freshTopic('plt-gc', 1);
  const log = createLogger('warn');
  log.warn = ((o: unknown, msg: string) => void warnings.push(msg + JSON.stringify(o))) as typeof log.warn;
  const client = platformaticClient(base(), 'consumer', log);
  const sender = client.sender({ sendRetries: 3, requestTimeoutMs: 10_000 });
  onCleanup(() => sender.disconnect());
  await sender.connect();
  await sender.send([{ topic, key: 'k', value: Buffer.from('v'), headers: {}, eventId: 'e' }]);
  const member = client.member({
    groupId,
    topics: [topic],
    startAt: 'earliest',
    fetchWaitMs: 100,
    ...timeouts,
  });
  onCleanup(() => member.stop());
  let handed = false;
  await member.start(async (b) => {
    handed = true;
    await b.commit(String(BigInt(b.messages[b.messages.length - 1]!.offset) + 1n));
  });
  await eventually(async () => (handed ? true : undefined), 20_000, 'a batch');
}

test('a KIP-848 member sets its session timeout and heartbeat interval on its group', async () => {
  const groupId = uniqueName('plt-gc');
  const warnings: string[] = [];
  await memberRuns(groupId, { sessionTimeoutMs: 7000, heartbeatIntervalMs: 700 }, warnings);
  const configs = await groupConfigs(groupId);
  expect(configs.get('consumer.session.timeout.ms')).toBe('7000');
  expect(configs.get('consumer.heartbeat.interval.ms')).toBe('700');
  expect(warnings).toEqual([]);
});

test('a session timeout below the broker floor is refused with a warning naming the broker setting, and the member still runs', async () => {
  const groupId = uniqueName('plt-gc');
  const warnings: string[] = [];
  // The local broker's group.consumer.min.session.timeout.ms is 6000.
  await memberRuns(groupId, { sessionTimeoutMs: 3000, heartbeatIntervalMs: 700 }, warnings);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain('group.consumer.min.session.timeout.ms');
  const configs = await groupConfigs(groupId);
  expect(configs.get('consumer.session.timeout.ms')).not.toBe('3000');
});
