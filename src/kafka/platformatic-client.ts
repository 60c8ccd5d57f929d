// The @platformatic/kafka adapter of Keyflow's client interface (types.ts), written against the
// library's own API: group member (KIP-848 or classic), record sender, offsets reader, topic admin.
import { Admin } from '@platformatic/kafka';
import type { Logger } from '../logger';
import type { TopicSpec } from '../topology/types';
import { platformaticCall } from './platformatic-errors';
import { PlatformaticGroupMember, type GroupProtocol } from './platformatic-group';
import { platformaticOffsets } from './platformatic-offsets';
import type { PlatformaticBase } from './platformatic-options';
import { PlatformaticSender } from './platformatic-producer';
import { ensureTopics } from './platformatic-topics';
import type { KafkaClient, TopicAdmin } from './types';

export function platformaticClient(
  base: PlatformaticBase,
  protocol: GroupProtocol = 'consumer',
  log?: Logger,
): KafkaClient {
  return {
    member: (opts, events) => new PlatformaticGroupMember(base, opts, events, protocol, log),
    sender: (opts) => new PlatformaticSender(base, opts),
    offsets: () => platformaticOffsets(base),
    admin: () => platformaticAdmin(base),
  };
}

function platformaticAdmin(base: PlatformaticBase): TopicAdmin {
  let admin: Admin | undefined;
  const open = () => (admin ??= new Admin({ ...base, clientId: `${base.clientId}-admin` }));
  return {
    // The library connects on first use; listing topics checks that a broker answers.
    connect: () => platformaticCall(async () => void (await open().listTopics())),
    async disconnect() {
      const a = admin;
      admin = undefined;
      await a?.close().catch(() => undefined);
    },
    ensureTopics: (topics: TopicSpec[], log: Logger) => ensureTopics(open(), topics, log),
  };
}
