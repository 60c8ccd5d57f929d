// Which kafkajs log lines are noise. kafkajs logs every error response of the broker at error level
// before its retrier looks at it; while a fresh group's coordinator loads or a new topic elects its
// leaders, that is a handful of "errors" that the retry then resolves. They go to debug: when the retries
// run out, kafkajs throws and the failure reaches us as an error of our own, so nothing is lost.

/**
 * Messages of the retriable broker errors a processor meets while starting (kafkajs
 * src/protocol/error.js: GROUP_LOAD_IN_PROGRESS, GROUP_COORDINATOR_NOT_AVAILABLE,
 * NOT_COORDINATOR_FOR_GROUP, LEADER_NOT_AVAILABLE, NOT_LEADER_FOR_PARTITION, UNKNOWN_TOPIC_OR_PARTITION).
 */
export const TRANSIENT_BROKER_ERRORS: readonly string[] = [
  "The coordinator is loading and hence can't process requests for this group",
  'The group coordinator is not available',
  'This is not the correct coordinator for this group',
  'There is no leader for this topic-partition as we are in the middle of a leadership election',
  'This server is not the leader for that topic-partition',
  'This server does not host this topic-partition',
];

/**
 * REBALANCE_IN_PROGRESS is not retriable in kafkajs's table, but the consumer answers it by rejoining
 * and logs that itself at warn ("The group is rebalancing, re-joining"), so the raw response adds nothing.
 */
export const REBALANCE_RESPONSE = 'The group is rebalancing, so a rejoin is needed';

/** A broker's error response that kafkajs handles by itself (the connection logs it as `Response <api>`). */
export function isRetriedResponse(message: string, fields: Record<string, unknown>): boolean {
  if (!message.startsWith('Response ') || typeof fields.error !== 'string') return false;
  return TRANSIENT_BROKER_ERRORS.includes(fields.error) || fields.error === REBALANCE_RESPONSE;
}
