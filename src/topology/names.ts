// The names a deployment claims on a shared Kafka cluster. Like Kafka Streams' `application.id`,
// KEYFLOW_APPLICATION_ID prefixes every consumer group (and transactional) id, so two deployments
// (staging and production, two apps, two demos) on one cluster never join each other's groups.
// The empty application id keeps the bare stage names deployments before it committed under.

/** What an application id may be: no dot, so `<app>.<stage>` reads back unambiguously. */
export const APPLICATION_ID_PATTERN = /^[A-Za-z0-9_-]{0,64}$/;

/** The consumer group of a stage: `<applicationId>.<stage>`, or the bare stage name without one. */
export function groupIdFor(applicationId: string, stage: string): string {
  return applicationId === '' ? stage : `${applicationId}.${stage}`;
}

/**
 * The transactional id of one producer of a stage: the stage's group id and the producer's slot
 * (an instance id, or a partition for per-partition producers), so an application's transactions
 * fence only its own zombies.
 */
export function transactionalIdFor(applicationId: string, stage: string, slot: string | number): string {
  return `${groupIdFor(applicationId, stage)}.tx.${slot}`;
}
