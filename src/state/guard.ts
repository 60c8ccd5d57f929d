// The applied-event guard: a stage's effect on one document and the record that the event was applied
// land in ONE atomic update, so a redelivered or duplicated event finds its id already listed and changes nothing.
//
// What it guarantees, and what not: each document keeps the ids of its last APPLIED_WINDOW (64) applied
// events in `_applied`, and a duplicate is recognised ONLY while its id is among them. A re-send that
// arrives after 64 other events of the same document were applied is applied AGAIN. That covers the
// usual redelivery (the uncommitted tail of a partition after a crash or rebalance) and producer
// retries seconds apart, as long as fewer than 64 events of the document lie between the two sends; it
// does not cover an upstream outbox replayed hours later, nor a crash tail holding more than 64 events
// of one hot document. A stage that must count once for ever keys an archive (or a change row) by
// (tenant, event id), as the dataflows do (state/event-identity.ts), or makes its effect idempotent by
// the reducer's own ordering (version / occurredAt). The ids are not tenant-scoped: a document belongs
// to one entity of one tenant. An unbounded list would grow every hot document forever (16 MB cap).
import type { ClientSession, Collection, Document, Filter, UpdateFilter } from 'mongodb';
import { classify, KeyflowError } from '../errors';
import { isDuplicateKey } from './conflicts';

export const APPLIED_FIELD = '_applied';
export const APPLIED_WINDOW = 64;

export type GuardOutcome = 'applied' | 'duplicate';

export interface ApplyOnceOptions {
  /** How many recent event ids the document keeps (default APPLIED_WINDOW). */
  window?: number;
  session?: ClientSession;
  /**
   * The entity lease's fencing token (ActionContext.fence): the document remembers the highest token
   * that wrote it and refuses a lower one with LEASE_LOST, so a holder that outlived its lease cannot
   * overwrite the next holder's work.
   */
  fence?: number;
}

export const FENCE_FIELD = '_fence';

/** An insert lost a race only to a concurrent first write of the same _id; a few rounds settle it. */
const MAX_ROUNDS = 3;

/**
 * Applies `update` to the document `_id` unless `eventId` is already among its recent applied events,
 * creating the document if it does not exist. `update` is a plain update document ($set, $inc, ...);
 * it must not touch `_applied` itself.
 */
export async function applyOnce<T extends Document>(
  collection: Collection<T>,
  _id: unknown,
  eventId: string,
  update: UpdateFilter<T>,
  opts: ApplyOnceOptions = {},
): Promise<GuardOutcome> {
  const window = opts.window ?? APPLIED_WINDOW;
  if (!Number.isInteger(window) || window < 1) {
    throw new KeyflowError('HANDLER_FAILED', `applyOnce window must be a positive integer, got ${window}`);
  }
  const guarded = withAppliedPush(update as Document, eventId, window);
  // `$ne` on an array matches when no element equals eventId, and also when the document has no list yet.
  const filter = { _id, [APPLIED_FIELD]: { $ne: eventId } } as Filter<T>;
  if (opts.fence !== undefined) {
    Object.assign(filter, {
      $or: [{ [FENCE_FIELD]: { $exists: false } }, { [FENCE_FIELD]: { $lte: opts.fence } }],
    });
    guarded.$set = { ...(guarded.$set as Document | undefined), [FENCE_FIELD]: opts.fence };
  }

  for (let round = 0; round < MAX_ROUNDS; round++) {
    try {
      const res = await collection.updateOne(filter, guarded as UpdateFilter<T>, {
        upsert: true,
        session: opts.session,
      });
      if (res.matchedCount === 1 || res.upsertedCount === 1) return 'applied';
      // Acknowledged with nothing matched or inserted cannot happen with upsert; say so rather than guess.
      throw new KeyflowError('STORE_TRANSIENT', `applyOnce on ${collection.collectionName} matched nothing`);
    } catch (err) {
      if (!isDuplicateKey(err)) throw classify(err);
    }
    // The filter missed and the insert hit an existing _id: either the document lists eventId (a true
    // duplicate), or another client created the document between our filter and our insert. Only the
    // first is a duplicate; in the second case the next round matches the now-existing document.
    const seen = await collection.findOne({ _id } as Filter<T>, {
      session: opts.session,
      projection: { [APPLIED_FIELD]: 1, [FENCE_FIELD]: 1 },
    });
    if (seen && ((seen[APPLIED_FIELD] ?? []) as unknown[]).includes(eventId)) return 'duplicate';
    const fence = seen?.[FENCE_FIELD] as number | undefined;
    if (opts.fence !== undefined && fence !== undefined && fence > opts.fence) {
      throw new KeyflowError(
        'LEASE_LOST',
        `${collection.collectionName} ${String(_id)} was written under a newer lease (token ${fence} > ${opts.fence}); this write is refused`,
        { details: { eventId, fence: opts.fence, newer: fence } },
      );
    }
  }
  throw new KeyflowError(
    'STORE_TRANSIENT',
    `applyOnce on ${collection.collectionName} kept colliding with concurrent writers of the same _id`,
    { details: { eventId } },
  );
}

/** Adds the bounded push of eventId to a caller's update document. */
function withAppliedPush(update: Document, eventId: string, window: number): Document {
  if (Array.isArray(update)) {
    throw new KeyflowError(
      'HANDLER_FAILED',
      'applyOnce takes an update document, not an aggregation pipeline',
    );
  }
  for (const [op, fields] of Object.entries(update)) {
    if (fields && typeof fields === 'object' && APPLIED_FIELD in fields) {
      throw new KeyflowError(
        'HANDLER_FAILED',
        `applyOnce owns ${APPLIED_FIELD}; the update must not set it (${op})`,
      );
    }
  }
  const push = { ...(update.$push as Document | undefined) };
  push[APPLIED_FIELD] = { $each: [eventId], $slice: -window };
  return { ...update, $push: push };
}
