// The event archive a stage keeps: every distinct event it accepted, once, keyed by (tenant, event id)
// (see event-identity.ts). Derived tables are recomputed from it (idempotent by construction: a
// duplicate adds nothing), and replay reads it to recompute any entity's rows long after the input
// topic's retention has passed.
import type { Collection, Db, Document } from 'mongodb';
import { classify } from '../errors';
import type { CollectionIndexes } from './mongo';
import { isDuplicateKey } from './conflicts';

export interface ArchivedEvent<V = Document> {
  /**
   * eventKey(tenantId, eventId): one document per distinct event of a tenant, whatever the number of
   * deliveries. Entries archived before ids were tenant-scoped have the bare event id here.
   */
  _id: string;
  /** The event's own id; absent on entries archived before ids were tenant-scoped (their _id is it). */
  eventId?: string;
  entityId: string;
  tenantId: string | undefined;
  occurredAt: number;
  /** When the stage first accepted it, and where from: the arrival order replay uses for temporal rows. */
  arrivedAt: number;
  topic: string;
  partition: number;
  offset: number;
  value: V;
}

export function archiveIndexes(collection: string): CollectionIndexes {
  return {
    collection,
    indexes: [
      { key: { entityId: 1, occurredAt: 1 }, name: 'entity_occurred' },
      { key: { tenantId: 1, occurredAt: 1 }, name: 'tenant_occurred' },
    ],
  };
}

/** The event id of an archive entry, whether archived with a tenant-scoped _id or before. */
export function archivedEventId(doc: Pick<ArchivedEvent, '_id' | 'eventId'>): string {
  return doc.eventId ?? doc._id;
}

/**
 * Archives the event unless an event with its id is already there. Returns 'duplicate' for a
 * redelivery or an upstream duplicate send (same event id at another offset).
 */
export async function archiveEvent<V extends Document>(
  collection: Collection<ArchivedEvent<V>>,
  event: ArchivedEvent<V>,
): Promise<'archived' | 'duplicate'> {
  try {
    await collection.insertOne(event as never);
    return 'archived';
  } catch (err) {
    if (isDuplicateKey(err)) return 'duplicate';
    throw classify(err);
  }
}

export function archive<V extends Document>(db: Db, name: string): Collection<ArchivedEvent<V>> {
  return db.collection<ArchivedEvent<V>>(name);
}

/** An entity's archived events in occurredAt order, ties broken by event id (the reducers' order). */
export async function eventsOf<V extends Document>(
  collection: Collection<ArchivedEvent<V>>,
  entityId: string,
): Promise<ArchivedEvent<V>[]> {
  const rows = await collection
    .find({ entityId } as never)
    .sort({ occurredAt: 1, _id: 1 })
    .toArray();
  return rows as ArchivedEvent<V>[];
}

/**
 * Entity ids with archived events after `after`, in order, up to `batch` of them: the one archive walker
 * replay uses. It reads the entityId index in chunks (projection only), so a page costs about its own
 * events on MongoDB, and a few sorted reads on servers that scan.
 */
export async function entityIdsAfter<V extends Document>(
  collection: Collection<ArchivedEvent<V>>,
  after: string | undefined,
  batch: number,
): Promise<string[]> {
  const ids: string[] = [];
  let cursor = after;
  const chunk = Math.max(64, batch * 4);
  for (;;) {
    const docs = await collection
      .find((cursor === undefined ? {} : { entityId: { $gt: cursor } }) as never, {
        projection: { entityId: 1, _id: 0 },
      })
      .sort({ entityId: 1 })
      .limit(chunk)
      .toArray();
    for (const d of docs as { entityId: string }[]) {
      if (ids[ids.length - 1] !== d.entityId) ids.push(d.entityId);
      if (ids.length === batch) return ids;
    }
    if (docs.length < chunk) return ids;
    // The chunk ended inside one entity's events: go on after it (it is already listed).
    cursor = ids[ids.length - 1];
  }
}

/** The archived events of many entities in one query, in the reducers' order. */
export async function eventsOfMany<V extends Document>(
  collection: Collection<ArchivedEvent<V>>,
  entityIds: readonly string[],
  sort: Record<string, 1 | -1> = { occurredAt: 1, _id: 1 },
): Promise<ArchivedEvent<V>[]> {
  const rows = await collection
    .find({ entityId: { $in: [...entityIds] } } as never)
    .sort(sort)
    .toArray();
  return rows as ArchivedEvent<V>[];
}
