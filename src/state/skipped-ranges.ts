// Offset ranges a stage never read because they fell out of retention before it got to them: one
// document per range, written by _id (stage, topic, partition, first offset), so a second report of
// the same range — another member, a restart — changes nothing.
import type { Db } from 'mongodb';
import type { SkippedRange } from '../consumers/retention';

export const SKIPPED_RANGES = 'keyflow_skipped_ranges';

export interface SkippedRangeDoc extends Omit<SkippedRange, 'detectedAt'> {
  _id: string;
  detectedAt: Date;
}

export const skippedRangeId = (r: Pick<SkippedRange, 'stage' | 'topic' | 'partition' | 'from'>) =>
  `${r.stage}|${r.topic}|${r.partition}|${r.from}`;

/** Records the range once; the first report's time and log start stay. */
export async function recordSkippedRange(db: Db, r: SkippedRange): Promise<void> {
  const { detectedAt, ...rest } = r;
  await db
    .collection<SkippedRangeDoc>(SKIPPED_RANGES)
    .updateOne(
      { _id: skippedRangeId(r) },
      { $setOnInsert: { ...rest, detectedAt: new Date(detectedAt) } },
      { upsert: true },
    );
}

/** Every recorded range of a stage (or all stages), in _id order: an ops listing, not the hot path. */
export function skippedRanges(db: Db, stage?: string): Promise<SkippedRangeDoc[]> {
  const filter = stage === undefined ? {} : { _id: { $gte: `${stage}|`, $lt: `${stage}|\uffff` } };
  return db.collection<SkippedRangeDoc>(SKIPPED_RANGES).find(filter).sort({ _id: 1 }).toArray();
}
