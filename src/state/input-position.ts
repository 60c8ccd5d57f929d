// Where an effect came from: the input record (topic, partition, offset) that made it, stored with the
// effect and its emitted records in the same write. A stage re-sends what it stored only to that very
// record: its redelivery means the records it emitted never became visible (with exactly-once, a
// record's records commit with its offset, so a record comes again only if they did not). Any other
// record carrying an applied event (an upstream re-send, near or far) emits nothing: the change it
// repeats was committed, or will be by that record's own redelivery.
import type { StageEvent } from '../topology/types';

export interface InputPosition {
  topic: string;
  partition: number;
  /** Kafka offsets are 64-bit: kept as the decimal string the client gives. */
  offset: string;
}

/**
 * The offset a dead letter was first written for, from its id (`<stage>:<topic>:<partition>:<offset>`,
 * see src/state/dead-letters.ts `letterId`; a letter that dies again keeps its id). Topic names hold no
 * `:`, so the id parses from its end whatever the stage is called.
 */
function letterOffset(letter: string): string | undefined {
  const offset = letter.slice(letter.lastIndexOf(':') + 1);
  return /^\d+$/.test(offset) ? offset : undefined;
}

/**
 * The position an effect made by this event is stored under, and compared with. A re-driven event
 * (`keyflow dlq replay`) stands for the record its letter was written for: the re-drive goes back to
 * that record's topic and partition, and the letter's id names its offset. So the re-drive of an event
 * whose effect was written but whose records never left (they could not be built, or the broker
 * refused them: the letter settled its offset in their place) re-sends them, and so does a later
 * re-drive of the same letter, or the redelivery of a re-drive that crashed before its commit.
 */
export function positionOf(
  event: Pick<StageEvent, 'topic' | 'partition' | 'offset' | 'redrive'>,
): InputPosition {
  const original = event.redrive && letterOffset(event.redrive.letter);
  return { topic: event.topic, partition: event.partition, offset: original ?? event.offset };
}

/**
 * Is this event the record that made the stored effect, so that it re-sends what was stored? An effect
 * stored before positions were (no `stored`) answers yes for every delivery: documents written by
 * earlier releases keep the at-least-once behaviour they had, re-emitting on every duplicate.
 */
export function sameRecord(
  stored: InputPosition | null | undefined,
  event: Pick<StageEvent, 'topic' | 'partition' | 'offset' | 'redrive'>,
): boolean {
  if (stored === null || stored === undefined) return true;
  const here = positionOf(event);
  return stored.topic === here.topic && stored.partition === here.partition && stored.offset === here.offset;
}
