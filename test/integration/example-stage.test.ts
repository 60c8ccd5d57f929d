// The tutorial's stage (examples/lead-scores.ts, docs/writing-a-stage.md) does what the tutorial says,
// run by the real stage runner against a real MongoDB: each event counted once, a redelivery re-emits
// what it emitted the first time while a re-send at another offset emits nothing, and a write that lost
// a race is retried, not lost.
import type { Db } from 'mongodb';
import { ensureIndexes } from '../../src/state/mongo';
import { leadScores, leadScoresFlow, SCORES, type LeadScore } from '../../examples/lead-scores';
import { cleanupAll, freshDb } from '../helpers';
import { harness, message } from '../unit/fakes/runner';

afterAll(cleanupAll);

/** The runner's fakes for the broker side; the store is the real one. */
async function run(db: Db) {
  // The harness types its dependency overrides narrowly; the runner takes any Db.
  return harness(leadScores, undefined, {}, {}, { db } as never);
}

const activity = (eventId: string, leadId: string, points: number) => ({
  eventId,
  tenantId: 't1',
  leadId,
  points,
});

test('each event counts once; a redelivery re-emits its first score, a re-send nothing; the batch commits', async () => {
  const { db } = await freshDb('kfexample');
  await ensureIndexes(db, leadScoresFlow().indexes);
  const h = await run(db);

  await h.deliver([
    message(0, 'lead-a', activity('e1', 'lead-a', 5)),
    message(1, 'lead-b', activity('e2', 'lead-b', 3)),
    message(2, 'lead-a', activity('e3', 'lead-a', 2)),
    message(3, 'lead-a', activity('e1', 'lead-a', 5)), // the same event re-sent, in the same batch
  ]);
  await h.deliver([message(4, 'lead-a', activity('e1', 'lead-a', 5))]); // and in a later batch
  // Offset 0 redelivered (as after a crash before its commit): it re-sends the score it made.
  await h.deliver([message(0, 'lead-a', activity('e1', 'lead-a', 5))]);

  const docs = await db.collection<LeadScore>(SCORES).find().sort({ _id: 1 }).toArray();
  expect(docs.map((d) => [d._id, d.score, d.version])).toEqual([
    ['lead-a', 7, 1],
    ['lead-b', 3, 1],
  ]);
  const emitted = h.sent.map((r) => [r.key, JSON.parse(r.value!.toString()).score]);
  expect(emitted).toEqual([
    ['lead-a', 5],
    ['lead-b', 3],
    ['lead-a', 7],
    ['lead-a', 5],
  ]);
  // The redelivery's record is the first one's, byte for byte (its id derives from the cause).
  expect(h.sent[3]).toEqual(h.sent[0]);
  expect(h.commits).toContain('5');
  await h.runner.stop();
});

test('a write that lost a race to another writer is retried against the new state', async () => {
  const { db } = await freshDb('kfexample');
  await ensureIndexes(db, leadScoresFlow().indexes);
  const h = await run(db);
  await h.deliver([message(0, 'lead-a', activity('e1', 'lead-a', 5))]);

  // Another writer moves the document on between this batch's read and its write, once.
  const scores = db.collection<LeadScore>(SCORES);
  const original = leadScores.handler.read.bind(leadScores.handler);
  let raced = false;
  leadScores.handler.read = async (events, ctx) => {
    const state = await original(events, ctx);
    if (!raced) {
      raced = true;
      await scores.updateOne({ _id: 'lead-a' }, { $inc: { score: 100, version: 1 } });
    }
    return state;
  };
  try {
    await h.deliver([message(1, 'lead-a', activity('e2', 'lead-a', 1))]);
  } finally {
    leadScores.handler.read = original;
  }

  const doc = await scores.findOne({ _id: 'lead-a' });
  expect(doc).toMatchObject({ score: 106, version: 3 });
  expect(h.letters.letters.size).toBe(0);
  expect(h.commits.at(-1)).toBe('2');
  await h.runner.stop();
});
