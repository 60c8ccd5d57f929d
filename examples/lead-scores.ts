// The stage docs/writing-a-stage.md builds, step by step: a lead's engagement score, the sum of the points
// its activity events carry, counted once per event, with the new score emitted after each event.
// test/integration/example-stage.test.ts runs it through the real stage runner against a real MongoDB.
import { z } from 'zod';
import type { Dataflow } from '../src/runtime/dataflow';
import { byIds, guardIndex, writeGuarded, type GuardedWrite } from '../src/state/bulk';
import { positionOf, sameRecord, type InputPosition } from '../src/state/input-position';
import type { BatchStageSpec, OutRecord, TopicSpec } from '../src/topology/types';

// Step 1: the topics. The input is keyed by the entity the stage folds (the lead), so a lead's events
// arrive in order in one partition; Avro for the wire and the registry, zod for what the stage accepts.
export const activityZod = z.object({
  eventId: z.string().min(1),
  tenantId: z.string().min(1),
  leadId: z.string().min(1),
  points: z.number().int(),
});
export type Activity = z.infer<typeof activityZod>;

export const leadActivityTopic: TopicSpec<Activity> = {
  name: 'lead-activity.v1',
  partitions: 6,
  replicationFactor: 1,
  cleanupPolicy: 'delete',
  key: 'leadId',
  value: {
    avro: {
      type: 'record',
      name: 'LeadActivity',
      namespace: 'keyflow.examples',
      fields: [
        { name: 'eventId', type: 'string' },
        { name: 'tenantId', type: 'string' },
        { name: 'leadId', type: 'string' },
        { name: 'points', type: 'int' },
      ],
    },
    zod: activityZod,
  },
};

export const scoreZod = z.object({ leadId: z.string(), tenantId: z.string(), score: z.number().int() });
export type Score = z.infer<typeof scoreZod>;

export const leadScoresTopic: TopicSpec<Score> = {
  name: 'lead-scores.v1',
  partitions: 6,
  replicationFactor: 1,
  cleanupPolicy: 'delete',
  key: 'leadId',
  value: {
    avro: {
      type: 'record',
      name: 'LeadScore',
      namespace: 'keyflow.examples',
      fields: [
        { name: 'leadId', type: 'string' },
        { name: 'tenantId', type: 'string' },
        { name: 'score', type: 'int' },
      ],
    },
    zod: scoreZod,
  },
};

// Step 2: the table. One document per lead, `_id` = leadId. `recent` remembers the last 64 events
// counted, each with the score it produced and the input record that counted it, so that record's
// redelivery re-emits what it emitted the first time and any other copy emits nothing; `version`
// guards the write against a concurrent writer.
export interface LeadScore {
  _id: string;
  tenantId: string;
  score: number;
  recent: { eventId: string; score: number; input: InputPosition }[];
  version: number;
}

export const SCORES = 'LeadScores';
const RECENT = 64;

function scoreRecord(leadId: string, tenantId: string, score: number): OutRecord<Score> {
  return { topic: leadScoresTopic.name, key: leadId, value: { leadId, tenantId, score } };
}

// Steps 3-5: the stage. read → decide (pure) → write, for a whole fetched batch at a time.
export const leadScores: BatchStageSpec<Activity, LeadScore, LeadScore> = {
  kind: 'batch',
  name: 'lead-scores',
  inputs: [leadActivityTopic.name],
  outputs: [leadScoresTopic.name],
  description: "a lead's engagement score: the sum of its activity points",
  handler: {
    // One query for the whole batch, by _id: the cost per event does not grow with the table.
    async read(events, ctx) {
      const docs = await byIds(
        ctx.db.collection<LeadScore>(SCORES),
        events.map((e) => e.key),
      );
      const fresh = (id: string, tenantId: string): LeadScore => ({
        _id: id,
        tenantId,
        score: 0,
        recent: [],
        version: 0,
      });
      return new Map(events.map((e) => [e.key, docs.get(e.key) ?? fresh(e.key, e.value.tenantId)]));
    },

    // Pure: the runner folds each lead's events through it in offset order, passing on `state`.
    decide(e, lead) {
      const seen = lead.recent.find((r) => r.eventId === e.eventId);
      if (seen) {
        // Already counted: change nothing. The record that counted it, come again, re-sends its score.
        const emit = sameRecord(seen.input, e) ? [scoreRecord(lead._id, lead.tenantId, seen.score)] : [];
        return { plan: null, state: lead, emit, outcome: 'duplicate' };
      }
      const score = lead.score + e.value.points;
      const recent = [...lead.recent, { eventId: e.eventId, score, input: positionOf(e) }].slice(-RECENT);
      const next = { ...lead, score, recent };
      return { plan: next, state: next, emit: [scoreRecord(lead._id, lead.tenantId, score)] };
    },

    // One unordered bulk write for the batch: per lead, the state its last event left, guarded on the
    // version read. A failed operation is reported against the lead's first plan in the batch, so that
    // event and the lead's later ones are retried; the other leads commit.
    async write(plans, ctx) {
      const first = new Map<string, number>();
      const last = new Map<string, LeadScore>();
      for (const p of plans) {
        if (!first.has(p.event.key)) first.set(p.event.key, p.index);
        last.set(p.event.key, p.plan);
      }
      const writes: GuardedWrite<LeadScore>[] = [...last].map(([id, lead]) =>
        lead.version === 0
          ? { index: first.get(id)!, _id: id, insert: { ...lead, version: 1 } }
          : {
              index: first.get(id)!,
              _id: id,
              guard: { version: lead.version },
              update: { $set: { score: lead.score, recent: lead.recent }, $inc: { version: 1 } },
            },
      );
      const failed = await writeGuarded(ctx.db.collection<LeadScore>(SCORES), writes, 'lead scores');
      return { failed };
    },
  },
};

// Step 6: the dataflow. Its topics are created and its schemas registered at start, its indexes
// ensured; each query it runs is declared, so the index and hot-path tests can check it. Adding it to
// src/app/dataflows.ts is what makes `keyflow start` run it.
export function leadScoresFlow(): Dataflow {
  return {
    name: 'lead-scores',
    topics: [leadActivityTopic, leadScoresTopic],
    stages: [leadScores],
    indexes: [{ collection: SCORES, indexes: [guardIndex('version')] }],
    queries: [
      { name: 'leadScores.byIds', hot: true, collection: SCORES, filter: { _id: { $in: ['lead-1'] } } },
      {
        name: 'leadScores.guardedWrite',
        hot: true,
        collection: SCORES,
        filter: { _id: 'lead-1', version: 3 },
      },
    ],
    replay: [],
  };
}
