// The ingest stage: processes one asset of a batch with the pluggable handler, records the outcome on the
// image, and emits it to batch-status. The outcome is kept per asset per batch with the input record
// that produced it, so that record's redelivery re-emits exactly the status of the first run instead of
// processing (and timing) the asset again, and any other copy of the event emits nothing.
import type { Db } from 'mongodb';
import { classify, KeyflowError } from '../errors';
import type { ActionStageSpec, Decision, StageEvent } from '../topology/types';
import type { AssetFacts, AssetHandler } from './inspect';
import { COLLECTIONS, imageId, statusKey, type FlowNames } from './names';
import type { BatchStatus, IngestEvent } from './schemas';
import { imagesOf } from './store';
import { isDuplicateKey } from '../state/conflicts';
import { positionOf, sameRecord, type InputPosition } from '../state/input-position';

/** Retriable handler failures (an origin timing out) get this many attempts before they count as the error. */
export const INGEST_ATTEMPTS = 3;

interface IngestResult {
  _id: string;
  status: 'completed' | 'error';
  error: string | null;
  finished: number;
  facts: AssetFacts | null;
  /** The input record that produced it; absent on results recorded before it was stored. */
  input?: InputPosition;
}

export interface IngestPlan {
  result: IngestResult;
  fresh: boolean;
}

const resultsOf = (db: Db) => db.collection<IngestResult>(COLLECTIONS.ingestResults);

async function process(
  handler: AssetHandler,
  e: StageEvent<IngestEvent>,
  now: number,
): Promise<Omit<IngestResult, '_id'>> {
  const input = positionOf(e);
  try {
    const facts = await handler(e.value);
    return { status: 'completed', error: null, finished: now, facts, input };
  } catch (err) {
    const k = classify(err);
    if (k.retriable && e.attempt < INGEST_ATTEMPTS) throw k;
    return { status: 'error', error: k.message, finished: now, facts: null, input };
  }
}

/**
 * The asset's status record, emitted by the input record whose outcome it is: a fresh outcome, or the
 * recorded one to that record come again (its status never became visible). A result recorded before
 * inputs were stored is emitted to any copy, as every duplicate was then.
 */
export function decideIngest(
  e: StageEvent<IngestEvent>,
  s: IngestPlan,
  statusTopic: string,
): Decision<IngestPlan> {
  if (!s.fresh && !sameRecord(s.result.input, e)) return { plan: s, emit: [] };
  const status: BatchStatus = {
    batchId: e.value.batchId,
    customerId: e.value.customerId,
    assetId: e.value.assetId,
    status: s.result.status,
    error: s.result.error,
    finished: s.result.finished,
  };
  return { plan: s, emit: [{ topic: statusTopic, key: s.result._id, value: status }] };
}

export function ingestStage(
  names: FlowNames,
  handler: AssetHandler,
): ActionStageSpec<IngestEvent, IngestPlan, IngestPlan> {
  return {
    kind: 'action',
    name: names.ingestStage,
    inputs: [names.ingestTopic],
    outputs: [names.statusTopic],
    description: 'processes each asset of a batch and emits its outcome to batch-status',
    // The key contract: an asset's events are keyed by its asset id (KEY_MISMATCH otherwise).
    entityKey: (v) => (v as Partial<IngestEvent> | null)?.assetId,
    // Room beyond the handler's own attempts for store hiccups, so an asset ends as an error, not a dead letter.
    maxAttempts: INGEST_ATTEMPTS + 2,
    // One bad asset must not hold up the later events of the same asset id.
    onDeadLetter: 'skip',
    // A skipped asset still finishes: its row becomes `error`, so the batch's counts complete and a
    // reingest picks it up. Stamped with the event's own time where it has one, so a redelivery says the same.
    onDeadLettered(e, err) {
      const v = e.value as IngestEvent;
      const status: BatchStatus = {
        batchId: v.batchId,
        customerId: v.customerId,
        assetId: v.assetId,
        status: 'error',
        error: `dead-lettered (${err.code}); reingest the batch to try again`,
        finished: e.occurredAt ?? e.consumedAt,
      };
      return [{ topic: names.statusTopic, key: statusKey(v.batchId, v.assetId), value: status }];
    },
    handler: {
      async read(e, ctx) {
        const _id = statusKey(e.value.batchId, e.value.assetId);
        const earlier = await resultsOf(ctx.db).findOne({ _id });
        if (earlier) return { result: earlier, fresh: false };
        return { result: { _id, ...(await process(handler, e, ctx.now())) }, fresh: true };
      },
      decide: (e, s) => decideIngest(e, s, names.statusTopic),
      async write(plan, e, ctx) {
        const r = plan.result;
        if (plan.fresh) {
          try {
            await resultsOf(ctx.db).insertOne(r);
          } catch (err) {
            if (!isDuplicateKey(err)) throw classify(err);
            // Another delivery of this event recorded its outcome first; ours must not be emitted, so
            // the retry re-reads theirs (and emits it only if that delivery was this very record).
            throw new KeyflowError(
              'HANDLER_TRANSIENT',
              `asset ${r._id} was recorded concurrently; re-reading`,
            );
          }
        }
        // The image shows the outcome of its current batch only; a late outcome of an older batch is history.
        await imagesOf(ctx.db).updateOne(
          { _id: imageId(e.value.customerId, e.value.assetId), batch: e.value.batchId },
          { $set: { status: r.status, error: r.error, finished: new Date(r.finished), ...(r.facts ?? {}) } },
        );
        return plan.fresh ? 'applied' : 'duplicate';
      },
    },
  };
}
