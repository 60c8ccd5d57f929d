// A processor instance: prepares Kafka (topics, schemas), MongoDB (indexes) and the shared clients,
// then runs one StageRunner per stage of the given topology, plus the HTTP server when a port is set.
// Stop drains every stage, flushes the producer and provenance, and closes clients; safe twice.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Db } from 'mongodb';
import type { Registry } from 'prom-client';
import type { Config } from '../config';
import { RUNNER_DEFAULTS, type RunnerOptions } from '../consumers/options';
import { groupIdFor } from '../topology/names';
import { StageRunner } from '../consumers/stage-runner';
import { followTenantSettings, type SettingsFollower } from '../consumers/settings-consumer';
import { KeyflowError } from '../errors';
import { Instrumentation } from '../instrumentation';
import type { Logger } from '../logger';
import { HealthSource, mongoCheck } from '../monitoring/health';
import { LagCollector } from '../monitoring/lag';
import { createMetricsRegistry, registerStageMetrics } from '../monitoring/metrics';
import { kafkaClient } from '../kafka/client';
import type { KafkaClient, OffsetsReader } from '../kafka/types';
import { KeyedProducer } from '../producers/producer';
import { RegistryCodec } from '../schemas/codec';
import { TENANT_SETTINGS_TOPIC, TenantSettingsCache } from '../settings/tenant-settings';
import { startLetterSweep } from '../state/dead-letters';
import { sweepIndexedLetters } from '../state/letter-selection';
import { ensureIndexes, connectStore, type CollectionIndexes, type Store } from '../state/mongo';
import { Leases } from '../state/leases';
import { ByteBudget } from '../consumers/byte-budget';
import { ProvenanceRecorder } from '../state/provenance';
import { traceStages } from '../telemetry';
import { ENGINE_INDEXES } from './engine-queries';
import { startupWaiter } from './startup-wait';
import { validateTopology, withDeadLetterTopics } from '../topology/define';
import type { Topology } from '../topology/types';
import { z } from 'zod';

/** How often resolved dead letters past their retention are swept. */
const LETTER_SWEEP_MS = 3600 * 1000;
export interface ProcessorOptions {
  config: Config;
  topology: Topology;
  log: Logger;
  /** Overrides of the runner defaults (the config fills lanes, retries and timeouts). */
  runner?: Partial<RunnerOptions>;
  /** Only these stages run in this instance (default: all). */
  stages?: string[];
  /** The compacted topic holding tenant settings; followed when the topology declares it. */
  settingsTopic?: string;
  /** Indexes of the domains' tables, created at start before any stage runs. */
  indexes?: CollectionIndexes[];
}

/** What a domain's HTTP routes and start-up hooks get from the running processor. */
export interface ProcessorContext {
  config: Config;
  db: Db;
  kafka: KafkaClient;
  codec: RegistryCodec;
  producer: KeyedProducer;
  instrumentation: Instrumentation;
  metrics: Registry;
  health: HealthSource;
  settings: TenantSettingsCache<Record<string, unknown>>;
  /** Consumer lag of this instance's stage groups, polled every KEYFLOW_LAG_INTERVAL_MS. */
  lag: LagCollector;
  log: Logger;
}

export class Processor {
  readonly instanceId = `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 6)}`;
  readonly instrumentation: Instrumentation;
  readonly metrics: Registry;
  readonly health = new HealthSource();
  readonly runners: StageRunner[] = [];
  private stopLetterSweep: (() => void) | undefined;
  private store: Store | undefined;
  private kafka: KafkaClient | undefined;
  private codec: RegistryCodec | undefined;
  private producer: KeyedProducer | undefined;
  private provenance: ProvenanceRecorder | undefined;
  private settingsFollower: SettingsFollower | undefined;
  private settingsCache: TenantSettingsCache<Record<string, unknown>> | undefined;
  private lag: LagCollector | undefined;
  private offsets: OffsetsReader | undefined;
  private stopping: Promise<void> | undefined;
  private readonly topology: Topology;

  constructor(private readonly opts: ProcessorOptions) {
    this.topology = withDeadLetterTopics(opts.topology, { partitions: 1 });
    validateTopology(this.topology);
    this.instrumentation = new Instrumentation(opts.log);
    this.metrics = createMetricsRegistry();
    registerStageMetrics(this.metrics, this.instrumentation);
    traceStages(this.instrumentation, process.env, opts.log);
  }

  get context(): ProcessorContext {
    if (!this.store || !this.kafka || !this.codec || !this.producer || !this.settingsCache || !this.lag) {
      throw new KeyflowError('USAGE', 'the processor has not started yet');
    }
    return {
      config: this.opts.config,
      db: this.store.db,
      kafka: this.kafka,
      codec: this.codec,
      producer: this.producer,
      instrumentation: this.instrumentation,
      metrics: this.metrics,
      health: this.health,
      settings: this.settingsCache,
      lag: this.lag,
      log: this.opts.log,
    };
  }

  /** Prepares topics, schemas and indexes, then starts every stage. Fails fast with one clear line. */
  async start(): Promise<void> {
    const { config, log } = this.opts;
    this.kafka = kafkaClient(config, log, `${config.kafkaClientId}-${this.instanceId}`);
    const admin = this.kafka.admin();
    // One reader of committed offsets and log bounds: the settings follower, retention and lag.
    const offsets = (this.offsets = this.kafka.offsets());
    const until = startupWaiter({ waitMs: config.startupWaitMs, log });
    await until('Kafka', async () => {
      try {
        await admin.connect();
      } catch (err) {
        throw new KeyflowError(
          'UNREACHABLE',
          `Kafka at ${config.kafkaBrokers.join(',')} did not answer: ${(err as Error).message}; is it running (\`keyflow services status\`) and is KAFKA_BROKERS right?`,
          { cause: err },
        );
      }
    });
    try {
      const created = await until('Kafka', () => admin.ensureTopics(this.topology.topics, log));
      if (created.length) log.info({ created }, 'created topics');
      const codec = new RegistryCodec({ url: config.schemaRegistryUrl, auth: config.schemaRegistryAuth });
      this.codec = codec;
      await until('the schema registry', () => codec.registerAll(this.topology.topics));

      this.store = await until('MongoDB', () => connectStore(config, log));
      const db = this.store.db;
      await until('MongoDB', () => ensureIndexes(db, [...ENGINE_INDEXES, ...(this.opts.indexes ?? [])]));
      this.health.register('mongo', mongoCheck(this.store.db));

      this.producer = new KeyedProducer(this.kafka, this.codec);
      await this.producer.connect();
      this.provenance = new ProvenanceRecorder(this.store.db, this.instrumentation, log, {
        retentionDays: config.provenanceRetentionDays,
        sweepIntervalMs: config.provenanceSweepIntervalMs,
      });

      this.settingsCache = new TenantSettingsCache<Record<string, unknown>>({
        schema: z.record(z.string(), z.unknown()),
        defaults: { entityLocking: config.entityLocking },
        log,
        instrumentation: this.instrumentation,
      });
      const settingsTopic = this.opts.settingsTopic ?? TENANT_SETTINGS_TOPIC;
      if (this.topology.topics.some((t) => t.name === settingsTopic)) {
        const codec = this.codec;
        this.settingsFollower = await followTenantSettings(this.kafka, this.settingsCache, {
          bounds: (t: string) => offsets.bounds(t),
          clientId: config.kafkaClientId,
          log,
          topic: settingsTopic,
          decode: async (v) => (await codec.decode(settingsTopic, v)).value,
        });
        await this.settingsFollower.ready;
        this.health.register('tenant-settings', () => this.settingsFollower?.isCaughtUp() ?? false);
      }
    } finally {
      await admin.disconnect();
    }

    const leases = new Leases(this.store.db);
    // Resolved dead letters past retention: the TTL index drops them, this sweep where TTL is ignored.
    const letterRetentionMs = config.deadLetterRetentionDays * 24 * 3600 * 1000;
    const letterDb = this.store.db;
    this.stopLetterSweep = startLetterSweep(
      letterDb,
      LETTER_SWEEP_MS,
      (err) => log.warn({ err }, 'dead-letter sweep failed; next one in an hour'),
      () => sweepIndexedLetters(letterDb, letterRetentionMs),
    );
    const runnerOpts: RunnerOptions = {
      ...RUNNER_DEFAULTS,
      keyLanes: config.keyLanes,
      retry: { maxAttempts: config.maxAttempts, baseMs: config.retryBaseMs, maxMs: config.retryMaxMs },
      sessionTimeoutMs: config.sessionTimeoutMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      rebalanceTimeoutMs: config.rebalanceTimeoutMs,
      infraRetryBudgetMs: config.infraRetryBudgetMs,
      fetchMaxBytes: Math.min(RUNNER_DEFAULTS.fetchMaxBytes, config.ingestMaxBytes),
      fetchMaxBytesPerPartition: Math.min(RUNNER_DEFAULTS.fetchMaxBytesPerPartition, config.ingestMaxBytes),
      deadLetterRetentionMs: config.deadLetterRetentionDays * 24 * 3600 * 1000,
      dlqMaxMessageBytes: config.dlqMaxMessageBytes,
      deliveryGuarantee: config.deliveryGuarantee,
      instanceId: this.instanceId,
      applicationId: config.applicationId,
      ...this.opts.runner,
    };
    const wanted = this.opts.stages ? new Set(this.opts.stages) : undefined;
    const kafka = this.kafka;
    const ingest = new ByteBudget(config.ingestMaxBytes);
    const compacted = new Set(
      this.topology.topics.filter((t) => t.cleanupPolicy === 'compact').map((t) => t.name),
    );
    for (const spec of this.topology.stages) {
      if (wanted && !wanted.has(spec.name)) continue;
      const runner = new StageRunner(
        spec,
        {
          member: (o, e) => kafka.member(o, e),
          groupId: groupIdFor(runnerOpts.applicationId, spec.name),
          decoder: this.codec,
          producer: this.producer,
          db: this.store.db,
          log,
          instrumentation: this.instrumentation,
          ingest,
          compacted: (topic) => compacted.has(topic),
          offsets,
          leases: {
            acquire: async (key, owner, ttl) => (await leases.acquire(key, owner, ttl)).token,
            release: async (key, owner) => void (await leases.release(key, owner)),
          },
          runtime: () => this.settingsCache!.runtime(),
        },
        runnerOpts,
      );
      this.runners.push(runner);
      this.health.register(`stage:${spec.name}`, () => ({
        ok: runner.ready,
        detail: runner.ready ? 'joined' : 'not in its group yet',
      }));
    }
    await Promise.all(this.runners.map((r) => r.start()));
    // Lag is measured for the groups this instance runs; every member of a group reports the whole group.
    const lag = new LagCollector({
      offsets,
      groups: this.runners.map((r) => ({
        group: groupIdFor(runnerOpts.applicationId, r.name),
        stage: r.name,
        topics: r.spec.inputs,
      })),
      registry: this.metrics,
      log: log.child({ component: 'lag' }),
      intervalMs: config.lagIntervalMs,
      stallAfterMs: config.stallAfterMs,
    });
    this.lag = lag;
    await lag.start();
    this.health.register('lag', () => lag.readiness());
    log.info({ stages: this.runners.map((r) => r.name), instance: this.instanceId }, 'processor started');
  }

  /** Drains stages, then flushes and closes everything. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { log } = this.opts;
      this.stopLetterSweep?.();
      await this.lag?.stop().catch((err) => log.error({ err }, 'lag collector stop failed'));
      await Promise.all(
        this.runners.map((r) => r.stop().catch((err) => log.error({ err }, 'stage stop failed'))),
      );
      await this.offsets?.close().catch((err) => log.error({ err }, 'offsets admin close failed'));
      await this.settingsFollower
        ?.close()
        .catch((err) => log.error({ err }, 'settings follower close failed'));
      await this.producer?.close().catch((err) => log.error({ err }, 'producer close failed'));
      await this.provenance?.close().catch((err) => log.error({ err }, 'provenance close failed'));
      await this.store?.close();
      log.info({ instance: this.instanceId }, 'processor stopped');
    })();
    return this.stopping;
  }
}
