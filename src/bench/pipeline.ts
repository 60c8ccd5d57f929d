// The contestant under test: Keyflow's own processor running the appointments and lead-conversions
// stages, exactly as `keyflow start` would, on the arena's topics and database. Latency is taken from
// the engine's own `stage.event.handled` report (after the write, before the batched emit and commit),
// and the same report's timings say where an event's time goes.
import { kafkajsClient } from '../kafka/kafkajs-client';
import { EVENTS, type HandledEvent } from '../instrumentation';
import { KeyedProducer } from '../producers/producer';
import { Processor } from '../runtime/processor';
import { RUNTIME_KEY } from '../settings/tenant-settings';
import type { BatchStageSpec } from '../topology/types';
import { replayAll } from '../replay/full-pass';
import { rawReadRate } from './baselines';
import { otherClient } from './clients';
import { preloadConversions } from './preload';
import { replayFigures } from './replay-figures';
import {
  closeArena,
  offer,
  openArena,
  publishAll,
  sentAtOf,
  Tracker,
  wireRecords,
  withInjectedFailures,
  type Arena,
  type BenchContext,
} from './arena';
import { checkTables } from './correctness';
import { measurementOf, phaseLabel, type RunSpec } from './measure';
import type { Measurement } from './types';

/** Mean milliseconds per phase of an event's life in the pipeline. */
export type Profile = Record<string, number>;

const TERMINAL = new Set<HandledEvent['outcome']>([
  'applied',
  'duplicate',
  'skipped',
  'dead-lettered',
  'parked',
]);

/** Publishes the scenario's tenant settings and runtime switches on the arena's settings topic. */
async function publishSettings(ctx: BenchContext, arena: Arena): Promise<void> {
  const tenants = new Set<string>();
  for (const e of ctx.set.events) if (e.value) tenants.add(e.value.tenantId);
  const producer = new KeyedProducer(kafkajsClient(ctx.kafka), ctx.codec);
  try {
    const settings = JSON.stringify(ctx.scenario.tenants.settings);
    await producer.publish([
      ...[...tenants].map((t) => ({ topic: arena.settingsTopic, key: t, value: { tenantId: t, settings } })),
      {
        topic: arena.settingsTopic,
        key: RUNTIME_KEY,
        value: { tenantId: RUNTIME_KEY, settings: JSON.stringify(ctx.scenario.runtime) },
      },
    ]);
  } finally {
    await producer.close();
  }
}

/** Remembers each delivery's sent time as the handler first reads it (the engine's report lacks headers). */
function withSentAt(spec: BatchStageSpec, sent: Map<string, number>): BatchStageSpec {
  const inner = spec.handler;
  return {
    ...spec,
    handler: {
      read(events, c) {
        for (const e of events) {
          const at = sentAtOf(e.headers);
          if (at !== undefined) sent.set(`${e.topic}:${e.partition}:${e.offset}`, at);
        }
        return inner.read(events, c);
      },
      decide: (e, s) => inner.decide(e, s),
      write: (plans, c) => inner.write(plans, c),
    },
  };
}

class ProfileSums {
  private readonly sums = new Map<string, number>();
  private n = 0;

  add(h: HandledEvent, sentAt: number | undefined): void {
    if (h.readStartedAt === undefined || h.writeStartedAt === undefined || h.emitStartedAt === undefined)
      return;
    this.n++;
    const parts: [string, number][] = [
      ['produce → consumed (Kafka, fetch wait, queue)', sentAt !== undefined ? h.consumedAt - sentAt : 0],
      ['consumed → read (key lane, lease)', h.readStartedAt - h.consumedAt],
      ['read (Mongo)', (h.decideStartedAt ?? h.writeStartedAt) - h.readStartedAt],
      ['decide (pure)', h.writeStartedAt - (h.decideStartedAt ?? h.writeStartedAt)],
      ['write (Mongo)', h.emitStartedAt - h.writeStartedAt],
      ['emit prepare (encode)', h.finishedAt - h.emitStartedAt],
    ];
    for (const [k, v] of parts) this.sums.set(k, (this.sums.get(k) ?? 0) + v);
  }

  mean(): Profile | null {
    if (this.n === 0) return null;
    return Object.fromEntries([...this.sums].map(([k, v]) => [k, Math.round((v / this.n) * 100) / 100]));
  }
}

/**
 * Runs the pipeline exactly-once (`pipeline`), at-least-once (`pipelineAtLeastOnce`), or exactly-once
 * on the Kafka client the configuration does not pick (`pipelineOtherClient`).
 */
export async function runPipeline(
  ctx: BenchContext,
  spec: RunSpec,
  contestant: 'pipeline' | 'pipelineAtLeastOnce' | 'pipelineOtherClient' = 'pipeline',
): Promise<Measurement & { profile: Profile | null }> {
  const deliveryGuarantee = contestant === 'pipelineAtLeastOnce' ? 'at-least-once' : 'exactly-once';
  const kafkaAdapter =
    contestant === 'pipelineOtherClient' ? otherClient(ctx.config) : ctx.config.kafkaAdapter;
  const arena = await openArena(ctx, 'pipeline');
  let processor: Processor | undefined;
  const figures: Record<string, string | number> = {};
  try {
    if (spec.preload) {
      ctx.progress.phase(
        `preloading ${spec.preload.conversions} archived conversions`,
        spec.preload.conversions,
      );
      const ms = await preloadConversions(arena.db, spec.preload, (n) => ctx.progress.tick(n));
      ctx.progress.end(`${Math.round(ms / 1000)} s`);
      figures['preload time (s)'] = Math.round(ms / 100) / 10;
    }
    await publishSettings(ctx, arena);
    const records = await wireRecords(ctx, arena, spec.events);
    if (spec.mode === 'max') await publishAll(ctx.kafka, records);
    const tracker = new Tracker(records.length);
    const sent = new Map<string, number>();
    const profile = new ProfileSums();
    const stages = [arena.stages.appointments, arena.stages.conversions].map((s) =>
      withSentAt(withInjectedFailures(s, ctx.set), sent),
    );
    processor = new Processor({
      config: { ...ctx.config, mongoDb: arena.dbName, deliveryGuarantee, kafkaAdapter },
      topology: { topics: arena.topics, stages },
      log: ctx.log,
      settingsTopic: arena.settingsTopic,
      // No `indexes`: openArena made the dataflows' indexes in this database already.
    });
    processor.instrumentation.on(EVENTS.EVENT_HANDLED, (h) => {
      if (!TERMINAL.has(h.outcome)) return;
      const pos = `${h.topic}:${h.partition}:${h.offset}`;
      const sentAt = sent.get(pos);
      if (!tracker.done(pos, sentAt, h.finishedAt)) return;
      if (h.outcome === 'dead-lettered' || h.outcome === 'parked') {
        tracker.deadLetters++;
        tracker.errors++;
      }
      if (h.outOfOrder) tracker.outOfOrder++;
      profile.add(h, sentAt);
    });
    let deliveries = 0;
    let delivered = 0;
    let deliveryMs = 0;
    processor.instrumentation.on(EVENTS.BATCH_END, (b) => void (deliveryMs += b.durationMs));
    processor.instrumentation.on(EVENTS.BATCH_START, (b) => {
      deliveries++;
      delivered += b.size;
    });
    processor.instrumentation.on(EVENTS.EVENT_RETRY, () => {
      tracker.retries++;
      tracker.errors++;
    });
    ctx.progress.phase(phaseLabel('pipeline', spec), records.length);
    await processor.start();
    const running = processor;
    const finished = await offer(ctx, spec, records, tracker, () => running.runners.every((r) => r.ready));
    await processor.stop();
    processor = undefined;
    if (deliveries > 0) {
      figures['mean events per delivery'] = Math.round(delivered / deliveries);
      figures[
        `mean delivery time, ${deliveryGuarantee}${contestant === 'pipelineOtherClient' ? `, ${kafkaAdapter}` : ''} (ms)`
      ] = Math.round((deliveryMs / deliveries) * 10) / 10;
    }
    let correct: boolean | null = null;
    const notes: string[] = [];
    if (spec.check && finished) {
      const check = await checkTables(arena.db, ctx.set.truth);
      correct = check.correct;
      notes.push(...check.notes);
      if (check.flagged !== ctx.set.truth.lateAppointments) {
        notes.push(
          `flagged ${check.flagged} change row(s) out of order; ${ctx.set.truth.lateAppointments} were published late`,
        );
      }
    }
    if (spec.replay && finished) {
      const summary = await replayAll(
        arena.db,
        arena.flows.flatMap((f) => f.replay),
        { shards: 4 },
      );
      const events = records.length;
      figures['replay full pass: entities/s'] = Math.round(summary.rate);
      figures['replay full pass: archived events/s'] = Math.round(
        (events * 1000) / Math.max(1, summary.durationMs),
      );
      figures['replay full pass: differences'] = summary.differences;
      figures['raw read of the input topics: events/s'] = await rawReadRate(ctx, arena, events);
    }
    // Replay's cost on this store: on the empty one (the replay run) and on the preloaded one.
    if (finished && (spec.replay || spec.preload)) {
      const lead = spec.preload
        ? 'pre-0'
        : (ctx.set.events.find((e) => e.flow === 'conversions')?.key ?? 'none');
      const label = spec.preload ? `${spec.preload.conversions} archived conversions` : 'empty store';
      Object.assign(
        figures,
        await replayFigures(
          arena.db,
          arena.flows.flatMap((f) => f.replay),
          lead,
          label,
        ),
      );
    }
    return {
      ...measurementOf(contestant, spec, tracker, finished, { correct, notes }),
      figures,
      profile: profile.mean(),
    };
  } finally {
    await processor?.stop().catch(() => undefined);
    await closeArena(ctx, arena);
  }
}
