// The ops page and the JSON it polls: per stage lag, rate and errors per partition, stalled partitions,
// dead letters with re-drive, batch progress (once batches report it) and the out-of-order report.
import type { FastifyRequest } from 'fastify';
import type { Db } from 'mongodb';
import { z } from 'zod';
import { parseInput, type RouteModule } from '../api/server';
import {
  deadLetters,
  DEFAULT_RETENTION_MS,
  discardLetter,
  listLetters,
  type DeadLetter,
  type LetterStatus,
} from '../state/dead-letters';
import { bySelection, selectLetters } from '../state/letter-selection';
import { redrive } from '../consumers/redrive';
import { KeyflowError } from '../errors';
import { EVENTS, type Instrumentation } from '../instrumentation';
import { HEADERS } from '../producers/headers';
import type { WireRecord } from '../producers/types';
import { outOfOrderReport } from '../state/out-of-order';
import { skippedRanges } from '../state/skipped-ranges';
import type { LagCollector, PartitionLag } from './lag';
import { discardBody, lettersQuery, redriveBody, redriveParams, stageName } from './ops-letter-inputs';
import { OPS_PAGE_HTML } from './ops-page';

/** Progress of one batch, for the page's batches section. */
export interface BatchProgress {
  id: string;
  status: string;
  total: number;
  done: number;
  failed: number;
}

export interface OpsDeps {
  lag: LagCollector;
  db: Db;
  producer: { sendNow(records: WireRecord[]): Promise<void> };
  instrumentation: Instrumentation;
  /** Who an ops action is done by (the admin listener's authenticated identity); default "admin". */
  adminIdentity?: (req: FastifyRequest) => string | undefined;
  /** The processor's settings: KEYFLOW_DEAD_LETTER_RETENTION_DAYS keeps a discarded letter. */
  config?: { deadLetterRetentionDays: number };
  /** Batches report their progress here once they exist; without it the page shows a placeholder. */
  batches?: () => Promise<BatchProgress[]>;
}

const skippedQuery = z.strictObject({ stage: stageName.optional() });

const outOfOrderQuery = z.strictObject({
  stage: stageName.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * Failures this instance saw, per partition and per stage. A partition's errors are its final failures
 * (dead-lettered or parked): a retry's event carries no partition. They count from this process's start.
 */
class ErrorTally {
  readonly byPartition = new Map<string, number>();
  readonly byStage = new Map<string, { errors: number; retries: number; codes: Record<string, number> }>();
  readonly stop: () => void;

  constructor(instrumentation: Instrumentation) {
    const offs = [
      instrumentation.on(EVENTS.EVENT_HANDLED, (e) => {
        if (e.errorCode === undefined) return;
        const k = `${e.stage}\u0000${e.topic}\u0000${e.partition}`;
        this.byPartition.set(k, (this.byPartition.get(k) ?? 0) + 1);
        this.count(e.stage, e.errorCode, false);
      }),
      instrumentation.on(EVENTS.EVENT_RETRY, (r) => this.count(r.stage, r.code, true)),
    ];
    this.stop = () => offs.forEach((off) => off());
  }

  partition(stage: string, p: PartitionLag): number {
    return this.byPartition.get(`${stage}\u0000${p.topic}\u0000${p.partition}`) ?? 0;
  }

  stage(name: string) {
    return this.byStage.get(name) ?? { errors: 0, retries: 0, codes: {} };
  }

  private count(stage: string, code: string, retry: boolean): void {
    let s = this.byStage.get(stage);
    if (!s) this.byStage.set(stage, (s = { errors: 0, retries: 0, codes: {} }));
    s.errors++;
    if (retry) s.retries++;
    s.codes[code] = (s.codes[code] ?? 0) + 1;
  }
}

function letterView(l: DeadLetter) {
  return {
    id: l._id,
    stage: l.stage,
    key: l.key,
    eventId: l.eventId,
    topic: l.topic,
    partition: l.partition,
    offset: l.offset,
    code: l.code,
    message: l.message,
    attempts: l.attempts,
    status: l.status,
    redrives: l.redrives,
    firstFailedAt: l.firstFailedAt,
    deadAt: l.deadAt,
    tenantId: l.headers[HEADERS.TENANT_ID],
    discarded: l.discarded ?? null,
  };
}

export function opsRoutes(deps: OpsDeps): RouteModule {
  const { lag, db } = deps;
  const known = () => new Set(lag.groups.map((g) => g.stage ?? g.group));
  const requireStage = (stage: string) => {
    if (!known().has(stage)) {
      throw new KeyflowError(
        'USAGE',
        `unknown stage ${stage}; this processor runs ${[...known()].join(', ')}`,
      );
    }
  };

  return (app) => {
    const tally = new ErrorTally(deps.instrumentation);
    app.addHook('onClose', async () => tally.stop());

    app.get('/ops', async (_req, reply) =>
      reply
        .header('content-type', 'text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(OPS_PAGE_HTML),
    );

    app.get('/ops/api/stages', async () => {
      const snap = lag.snapshot();
      const letterCounts = await countLetters(db);
      const stages = snap.groups.map((g) => {
        const partitions = g.partitions.map((p) => ({ ...p, errors: tally.partition(g.stage, p) }));
        const t = tally.stage(g.stage);
        return {
          name: g.stage,
          group: g.consumergroup,
          topics: g.topics,
          state: g.state,
          members: g.members,
          lag: partitions.reduce((n, p) => n + p.lag, 0),
          lagSeconds: partitions.reduce((n, p) => Math.max(n, p.lagSeconds), 0),
          ratePerSec: partitions.reduce((n, p) => n + p.ratePerSec, 0),
          errors: t.errors,
          retries: t.retries,
          errorsByCode: t.codes,
          stalled: partitions.filter((p) => p.stalled).length,
          deadLetters: letterCounts.get(g.stage) ?? {},
          partitions,
        };
      });
      return { at: snap.at, error: snap.error, stages };
    });

    app.get('/ops/api/dead-letters', async (req) => {
      const q = parseInput(lettersQuery, req.query, 'query');
      requireStage(q.stage);
      const selection = { key: q.key, codes: q.code, since: q.since, until: q.until };
      const letters: DeadLetter[] = [];
      if (bySelection(selection)) {
        for await (const page of selectLetters(db, q.stage, selection, {
          status: q.status,
          limit: q.limit,
        })) {
          letters.push(...page);
        }
      } else {
        letters.push(...(await listLetters(db, q.stage, { key: q.key, status: q.status, limit: q.limit })));
      }
      return { stage: q.stage, count: letters.length, letters: letters.map(letterView) };
    });

    app.post('/ops/api/dead-letters/:stage/redrive', async (req) => {
      const { stage } = parseInput(redriveParams, req.params, 'params');
      const body = parseInput(redriveBody, req.body ?? undefined, 'body');
      requireStage(stage);
      const { key } = body;
      const selection = { codes: body.code, since: body.since, until: body.until };
      const result = await redrive({
        db,
        producer: deps.producer,
        stage,
        key,
        selection: bySelection(selection) ? selection : undefined,
      });
      req.log.info(
        { stage, key, redriven: result.redriven, held: result.held.length },
        'dead letters re-driven from the ops page',
      );
      return { stage, key: key ?? null, ...result };
    });

    // Gives up a letter re-drive cannot fix (undecodable bytes): resolved with who, why and when.
    app.post('/ops/api/dead-letters/:stage/discard', async (req, reply) => {
      const { stage } = parseInput(redriveParams, req.params, 'params');
      const body = parseInput(discardBody, req.body ?? undefined, 'body');
      requireStage(stage);
      const by = `ops:${deps.adminIdentity?.(req) ?? 'admin'}`;
      const target = body.letter !== undefined ? { letter: body.letter } : { key: body.key! };
      const days = deps.config?.deadLetterRetentionDays;
      const retentionMs = days === undefined ? DEFAULT_RETENTION_MS : days * 24 * 3600 * 1000;
      try {
        const letter = await discardLetter(db, { stage, target, by, reason: body.reason, retentionMs });
        req.log.info({ stage, letter: letter._id, by }, 'dead letter discarded from the ops page');
        return { stage, discarded: letterView(letter) };
      } catch (err) {
        if (!(err instanceof KeyflowError) || err.code !== 'DEAD_LETTER_NOT_FOUND') throw err;
        return reply.status(404).send({ error: { code: err.code, message: err.message } });
      }
    });

    app.get('/ops/api/out-of-order', async (req) => {
      const q = parseInput(outOfOrderQuery, req.query, 'query');
      return outOfOrderReport(db, q.stage, q.limit);
    });

    // Input offsets that fell out of retention before a stage read them (reported, never skipped silently).
    app.get('/ops/api/skipped-ranges', async (req) => {
      const q = parseInput(skippedQuery, req.query, 'query');
      if (q.stage !== undefined) requireStage(q.stage);
      const ranges = await skippedRanges(db, q.stage);
      return {
        count: ranges.length,
        offsets: ranges.reduce((n, r) => n + r.count, 0),
        ranges: ranges.map(({ _id, ...r }) => ({ ...r, detectedAt: r.detectedAt.toISOString() })),
      };
    });

    app.get('/ops/api/batches', async () => {
      if (!deps.batches) return { available: false, batches: [] };
      return { available: true, batches: await deps.batches() };
    });
  };
}

/** Letters per stage and status, in one pass. */
async function countLetters(db: Db): Promise<Map<string, Partial<Record<LetterStatus, number>>>> {
  const rows = await deadLetters(db)
    .aggregate<{ _id: { stage: string; status: LetterStatus }; n: number }>([
      { $group: { _id: { stage: '$stage', status: '$status' }, n: { $sum: 1 } } },
    ])
    .toArray();
  const out = new Map<string, Partial<Record<LetterStatus, number>>>();
  for (const r of rows) {
    const s = out.get(r._id.stage) ?? {};
    s[r._id.status] = r.n;
    out.set(r._id.stage, s);
  }
  return out;
}
