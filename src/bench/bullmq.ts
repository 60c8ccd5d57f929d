// The `bullmq` baseline: the queue the seed's system runs on today. Each event is a BullMQ job on a
// local Redis; workers run the same stage actions (read → decide → write → emit) with BullMQ's own
// retries. Jobs of one entity may run at once on different workers, as they do there: the stages'
// version guards turn that into retries instead of lost updates, and correctness says whether it held.
import { kafkajsClient } from '../kafka/kafkajs-client';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { KeyflowError } from '../errors';
import { KeyedProducer } from '../producers/producer';
import { closeArena, openArena, paced, Tracker, withInjectedFailures, type BenchContext } from './arena';
import { runActions, stageEvent } from './baselines';
import { checkTables } from './correctness';
import type { BenchEvent, Flow } from './events';
import { measurementOf, phaseLabel, type RunSpec } from './measure';
import type { Measurement } from './types';

/** Workers per run: the pipeline's key lanes per partition (16) is its usual concurrency per partition. */
export const BULLMQ_CONCURRENCY = 16;
const ATTEMPTS = 5;

interface JobData {
  flow: Flow;
  key: string;
  /** The event as upstream sent it, or null for an injected poison job. */
  value: unknown;
  sentAt: number;
}

const jobsOf = (events: readonly BenchEvent[], sentAt: number) =>
  events.map((e) => ({
    name: e.flow,
    data: { flow: e.flow, key: e.key, value: e.value, sentAt } satisfies JobData,
    opts: {
      attempts: ATTEMPTS,
      backoff: { type: 'exponential', delay: 200 },
      removeOnComplete: true,
      removeOnFail: true,
    },
  }));

export async function runBullmq(ctx: BenchContext, spec: RunSpec, redisPort: number): Promise<Measurement> {
  const arena = await openArena(ctx, 'bullmq');
  const connection = { host: '127.0.0.1', port: redisPort, maxRetriesPerRequest: null };
  const name = arena.prefix.replace(/[^A-Za-z0-9_-]/g, '-');
  const queue = new Queue<JobData>(name, { connection });
  const producer = new KeyedProducer(kafkajsClient(ctx.kafka), ctx.codec);
  let worker: Worker<JobData> | undefined;
  try {
    await producer.connect();
    const stages = {
      appointments: withInjectedFailures(arena.stages.appointments, ctx.set),
      conversions: withInjectedFailures(arena.stages.conversions, ctx.set),
    };
    // What a Kafka consumer's decode checks: each input's zod schema, looked up once, not per job.
    const schemaOf = (flow: Flow) => arena.topics.find((t) => t.name === arena.input[flow])!.value!.zod;
    const schemas = { appointments: schemaOf('appointments'), conversions: schemaOf('conversions') };
    const tracker = new Tracker(spec.events.length);
    const process = async (job: Job<JobData>) => {
      const stage = stages[job.data.flow];
      if (job.data.value === null) throw new UnrecoverableError('undecodable event');
      const parsed = schemas[job.data.flow].safeParse(job.data.value);
      if (!parsed.success) throw new UnrecoverableError(`invalid event: ${parsed.error.message}`);
      const event = stageEvent(stage, job.data.key, parsed.data, {
        topic: stage.inputs[0]!,
        partition: 0,
        offset: job.id ?? '0',
        attempt: job.attemptsMade + 1,
      });
      return runActions(stage, event, { db: arena.db, producer });
    };
    worker = new Worker<JobData>(name, process, {
      connection,
      concurrency: BULLMQ_CONCURRENCY,
      autorun: false,
    });
    worker.on('completed', (job, result: { outOfOrder: boolean }) => {
      if (tracker.done(job.id!, job.data.sentAt) && result.outOfOrder) tracker.outOfOrder++;
    });
    worker.on('failed', (job, err) => {
      tracker.errors++;
      if (!job) return;
      const final =
        err instanceof UnrecoverableError ||
        err.name === 'UnrecoverableError' ||
        job.attemptsMade >= ATTEMPTS;
      if (final) {
        tracker.deadLetters++;
        tracker.done(job.id!);
      } else tracker.retries++;
    });
    worker.on('error', (err) => ctx.log.warn({ err }, 'bullmq worker error'));

    const add = async (batch: BenchEvent[], sentAt: number) => {
      for (let i = 0; i < batch.length; i += 1000)
        await queue.addBulk(jobsOf(batch.slice(i, i + 1000), sentAt));
    };
    if (spec.mode === 'max') await add([...spec.events], Date.now());
    ctx.progress.phase(phaseLabel('bullmq', spec), spec.events.length);
    void worker.run().catch((err: unknown) => ctx.log.error({ err }, 'bullmq worker stopped'));
    const publishing =
      spec.mode === 'open'
        ? paced(
            [...spec.events],
            spec.rate!,
            (b, due) => add(b, due),
            () => ctx.aborted(),
          )
        : Promise.resolve(0);
    const finished = await tracker.wait(ctx, spec.until);
    await publishing;
    await worker.close();
    worker = undefined;
    let correct: boolean | null = null;
    const notes = [`${BULLMQ_CONCURRENCY} concurrent jobs, ${ATTEMPTS} attempts with exponential backoff`];
    if (spec.check && finished) {
      const check = await checkTables(arena.db, ctx.set.truth);
      correct = check.correct;
      notes.push(...check.notes);
    }
    return measurementOf('bullmq', spec, tracker, finished, { correct, notes });
  } catch (err) {
    throw err instanceof KeyflowError
      ? err
      : new KeyflowError('UNREACHABLE', `bullmq baseline failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await worker?.close(true).catch(() => undefined);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close().catch(() => undefined);
    await producer.close().catch(() => undefined);
    await closeArena(ctx, arena);
  }
}
