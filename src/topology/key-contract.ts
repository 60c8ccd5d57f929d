// The key contract of entity-keyed inputs: a record's key is the id of the entity its value names.
// Stages group state and order events by key, so a record keyed otherwise (a producer keying by event
// id) would be decided on apart from its entity's other events: counted from a stale version, or
// twice across partitions. It is refused with its own dead-letter code instead.
import { KeyflowError } from '../errors';
import type { StageSpec } from './types';

/** KEY_MISMATCH when `key` is not the entity id the stage reads from `value`, else undefined. */
export function keyMismatch(
  spec: Pick<StageSpec, 'name' | 'entityKey'>,
  topic: string,
  key: string,
  value: unknown,
): KeyflowError | undefined {
  const entity = spec.entityKey?.(value, topic);
  if (entity === undefined || entity === key) return undefined;
  return new KeyflowError(
    'KEY_MISMATCH',
    `a record on ${topic} has key ${JSON.stringify(key)} but names entity ${JSON.stringify(entity)}; ` +
      `producers must key ${topic} by that id (stage ${spec.name})`,
    { details: { topic, key, entity } },
  );
}
