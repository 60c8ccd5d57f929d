// Dead letters by error code and time, reachable by `_id` alone: mongo-java-server serves no range and no
// secondary index, so `dlq … --code/--since/--until` cannot filter the letters collection and stay flat.
// The letter writes keep, per stage and hour of `deadAt`, a head `h|<stage>|<hour>` counting letters per
// code, and one entry `e|<stage>|<hour>|<code>|<n>` (n below that count) naming each letter. A reader
// turns a time range into hours and hours into entry ids: every read is an `_id` `$in`. Entries are hints,
// the letter is the truth: a reader checks each letter's own code and time, so an entry left behind by a
// letter that died again (new code, new hour) or a count bumped by a write that then failed costs a read,
// never a wrong answer. Buckets older than the resolved-letter retention whose letters are all resolved
// or gone are swept.
import type { Db } from 'mongodb';
import { chunks } from './chunks';

export const LETTER_INDEX = 'keyflow_dead_letter_index';
/** `_id` of the document naming every stage that has a head, for the sweep. */
const STAGES_ID = 'stages';
const HOUR_MS = 3_600_000;
/** Ids per `$in`: one reply stays small on every server. */
export const IN_CHUNK = 500;

interface IndexDoc {
  _id: string;
  /** A head: letters per code in its hour. */
  counts?: Record<string, number>;
  /** An entry: the letter it names. */
  letter?: string;
  /** A stage's span: the hour of its oldest head. */
  first?: string;
  /** The stages document. */
  names?: string[];
}

function coll(db: Db) {
  return db.collection<IndexDoc>(LETTER_INDEX);
}

/** `2026-12-06T21`: the hour a time falls in (UTC), sortable as text. */
export function hourOf(t: Date | number): string {
  return new Date(t).toISOString().slice(0, 13);
}

const headId = (stage: string, hour: string) => `h|${stage}|${hour}`;
const entryId = (stage: string, hour: string, code: string, n: number) => `e|${stage}|${hour}|${code}|${n}`;
const spanId = (stage: string) => `s|${stage}`;

/** Every hour from `from`'s to `to`'s, both included. */
function hoursBetween(from: Date, to: Date): string[] {
  const out: string[] = [];
  const start = Math.floor(from.getTime() / HOUR_MS) * HOUR_MS;
  for (let t = start; t <= to.getTime(); t += HOUR_MS) out.push(hourOf(t));
  return out;
}

/**
 * Indexes letters that died at `at` (their `deadAt`), grouped by stage. Per stage, one `$inc` on the
 * hour's head hands out the entries' numbers (members writing the same hour never share one); then the
 * entries, the stage's span and the stages list go in one unordered bulk write.
 */
export async function indexLetters(
  db: Db,
  letters: readonly { id: string; stage: string; code: string }[],
  at: Date,
): Promise<void> {
  const hour = hourOf(at);
  const byStage = new Map<string, Map<string, string[]>>();
  for (const l of letters) {
    const codes = byStage.get(l.stage) ?? new Map<string, string[]>();
    byStage.set(l.stage, codes);
    codes.set(l.code, [...(codes.get(l.code) ?? []), l.id]);
  }
  await Promise.all(
    [...byStage].map(async ([stage, codes]) => {
      const inc = Object.fromEntries([...codes].map(([code, ids]) => [`counts.${code}`, ids.length]));
      const head = await coll(db).findOneAndUpdate(
        { _id: headId(stage, hour) },
        { $inc: inc },
        { upsert: true, returnDocument: 'after' },
      );
      const ops = [...codes].flatMap(([code, ids]) => {
        const end = head?.counts?.[code] ?? ids.length;
        return ids.map((letter, i) => ({
          replaceOne: {
            filter: { _id: entryId(stage, hour, code, end - ids.length + i) },
            replacement: { letter },
            upsert: true,
          },
        }));
      });
      await coll(db).bulkWrite(
        [
          ...ops,
          { updateOne: { filter: { _id: spanId(stage) }, update: { $min: { first: hour } }, upsert: true } },
          {
            updateOne: { filter: { _id: STAGES_ID }, update: { $addToSet: { names: stage } }, upsert: true },
          },
        ],
        { ordered: false },
      );
    }),
  );
}

export interface IndexRange {
  /** Only these codes (all when absent). */
  codes?: readonly string[];
  since?: Date;
  until?: Date;
}

/**
 * Ids of the letters of `stage` the index lists for the range (a superset: callers check each letter).
 * Reads the stage's span (where its history starts), the range's heads, then their entries, each an
 * `_id` `$in`: the cost follows the hours in the range and the letters in them, not the store's size.
 */
export async function indexedLetterIds(db: Db, stage: string, range: IndexRange): Promise<string[]> {
  const span = await coll(db).findOne({ _id: spanId(stage) });
  if (!span?.first) return [];
  const first = new Date(`${span.first}:00:00Z`);
  const from = range.since && range.since > first ? range.since : first;
  const to = range.until ?? new Date();
  if (from > to) return [];
  const wanted = range.codes ? new Set(range.codes) : undefined;
  const entryIds: string[] = [];
  for (const hours of chunks(hoursBetween(from, to), IN_CHUNK)) {
    const heads = await coll(db)
      .find({ _id: { $in: hours.map((h) => headId(stage, h)) } })
      .toArray();
    for (const head of heads) {
      const hour = head._id.slice(-13);
      for (const [code, n] of Object.entries(head.counts ?? {})) {
        if (wanted && !wanted.has(code)) continue;
        for (let i = 0; i < n; i++) entryIds.push(entryId(stage, hour, code, i));
      }
    }
  }
  const ids = new Set<string>();
  for (const page of chunks(entryIds, IN_CHUNK)) {
    const entries = await coll(db)
      .find({ _id: { $in: page } })
      .toArray();
    for (const e of entries) if (e.letter) ids.add(e.letter);
  }
  return [...ids];
}

/**
 * Deletes the buckets (head and entries) of hours before `before` whose letters are all resolved or
 * gone, up to `maxHours` per stage per call, and moves each stage's span past the cleared prefix.
 * `isOpen(ids)` names the ids, of those given, whose letters still exist unresolved.
 */
export async function sweepLetterIndex(
  db: Db,
  before: Date,
  isOpen: (ids: string[]) => Promise<Set<string>>,
  maxHours = 24 * 7,
): Promise<number> {
  const stages = (await coll(db).findOne({ _id: STAGES_ID }))?.names ?? [];
  let swept = 0;
  for (const stage of stages) {
    const span = await coll(db).findOne({ _id: spanId(stage) });
    if (!span?.first) continue;
    const cutoff = hourOf(before);
    const hours = hoursBetween(new Date(`${span.first}:00:00Z`), before)
      .filter((h) => h < cutoff)
      .slice(0, maxHours);
    let kept: string | undefined;
    for (const hour of hours) {
      const head = await coll(db).findOne({ _id: headId(stage, hour) });
      if (head) {
        const ids = Object.entries(head.counts ?? {}).flatMap(([code, n]) =>
          Array.from({ length: n }, (_, i) => entryId(stage, hour, code, i)),
        );
        const letters: string[] = [];
        for (const page of chunks(ids, IN_CHUNK)) {
          for (const e of await coll(db)
            .find({ _id: { $in: page } })
            .toArray())
            if (e.letter) letters.push(e.letter);
        }
        if ((await isOpen(letters)).size > 0) {
          kept ??= hour;
          continue;
        }
        for (const page of chunks([...ids, head._id], IN_CHUNK)) {
          await coll(db).deleteMany({ _id: { $in: page } });
        }
        swept++;
      }
    }
    const next =
      kept ??
      (hours.length > 0 ? hourOf(new Date(`${hours.at(-1)!}:00:00Z`).getTime() + HOUR_MS) : undefined);
    if (next && next > span.first) {
      await coll(db).updateOne({ _id: spanId(stage), first: span.first }, { $set: { first: next } });
    }
  }
  return swept;
}
