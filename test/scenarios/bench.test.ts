// The benchmark harness end to end on the real stack, at a size that proves the machinery and not the
// speed (no figure is asserted): every contestant completes the same small event set, injected
// failures and poison land where they should, the pipeline's tables equal the ground truth while the
// incumbent's (no retries) do not, results and report are written, and nothing the run made is left.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { runBench } from '../../src/bench/run';
import type { BenchRun } from '../../src/bench/types';
import { createLogger } from '../../src/logger';
import { env, eventually } from '../helpers';

const scenario = {
  name: 'tiny',
  description: 'A handful of entities with late, duplicate, failing and poison events.',
  tenants: { count: 2, settings: { integration: 'x' } },
  source: { kind: 'synthetic', seed: 5, appointments: 60, leads: 30, conversionsPerLead: 3 },
  lateShare: 0.1,
  duplicateShare: 0.05,
  failures: { transientShare: 0.08, transientAttempts: 1, poisonShare: 0.02 },
  partitions: 2,
  load: { max: true, maxRepeats: 1, openLoop: [0.5], openLoopSeconds: 2, openLoopBaselines: ['passthrough'] },
  timeLimitSeconds: 150,
};

test('a tiny scenario runs every contestant, checks the tables, writes the results and leaves nothing behind', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyflow-bench-'));
  const file = path.join(dir, 'tiny.json');
  fs.writeFileSync(file, JSON.stringify(scenario));
  const kafka = new Kafka({ brokers: env('KAFKA_BROKERS').split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const mongo = new MongoClient(env('MONGO_URL'));
  await mongo.connect();
  try {
    const benchTopics = async () => (await admin.listTopics()).filter((t) => t.startsWith('bench.'));
    const before = new Set(await benchTopics());
    const lines: string[] = [];
    const terminal = { write: (s: string) => lines.push(s) > 0, isTTY: false };
    const code = await runBench({
      what: file,
      log: createLogger('error'),
      out: (l) => lines.push(l),
      terminal,
      resultsDir: path.join(dir, 'results'),
    });
    expect(code).toBe(0);

    const run = JSON.parse(fs.readFileSync(path.join(dir, 'results', 'latest.json'), 'utf8')) as BenchRun;
    const s = run.scenarios[0]!;
    expect(run.scenario).toBe('tiny');
    expect(s.eventSet.poison).toBeGreaterThan(0);
    expect(s.eventSet.injectedFailures).toBeGreaterThan(0);
    // Every contestant finished the whole set within the limit.
    for (const m of s.measurements)
      expect({ who: m.contestant, timedOut: m.timedOut }).toEqual({ who: m.contestant, timedOut: false });
    expect(Object.keys(s.baselines).sort()).toEqual([
      'bullmq',
      'incumbent',
      'passthrough',
      'pipelineAtLeastOnce',
      'pipelineOtherClient',
      'storeCeiling',
    ]);
    // The other Kafka client ran the same pipeline exactly, and both clients' raw rates are reported.
    expect(run.baselines.pipelineOtherClient!.correct).toBe(true);
    expect(run.baselines.pipelineOtherClient!.deadLetters).toBe(s.eventSet.poison);
    for (const client of ['kafkajs', 'platformatic'])
      for (const what of ['raw produce', 'raw consume'])
        expect(s.figures![`${client}: ${what} (events/s)`]).toBeGreaterThan(0);

    // The pipeline: exact tables, each poison record dead-lettered, each injected failure retried.
    expect(run.pipeline.correct).toBe(true);
    expect(run.pipeline.deadLetters).toBe(s.eventSet.poison);
    expect(run.pipeline.retries).toBeGreaterThanOrEqual(s.eventSet.injectedFailures);
    expect(run.pipeline.throughput).toBeGreaterThan(0);
    expect(run.pipeline.curve).toHaveLength(1);
    expect(run.pipeline.p99).not.toBeNull();
    // The incumbent has no retries: the events whose write failed once are lost, and the check sees it.
    expect(run.baselines.incumbent!.correct).toBe(false);
    expect(run.baselines.incumbent!.notes.join(' ')).toMatch(/dropped on an error/);
    expect(run.baselines.passthrough!.correct).toBe(true);
    expect(run.baselines.storeCeiling!.correct).toBe(true);
    expect(run.baselines.bullmq!.deadLetters).toBe(s.eventSet.poison);
    expect(typeof s.ratios['pipeline / incumbent']).toBe('number');

    const report = fs.readFileSync(path.join(dir, 'results', 'latest.md'), 'utf8');
    expect(report).toMatch(/\| pipeline \|/);
    expect(report).toContain('latest-tiny.svg');
    expect(fs.readFileSync(path.join(dir, 'results', 'latest-tiny.svg'), 'utf8')).toMatch(/^<svg/);

    // Nothing left: none of the run's topics, no bench consumer groups or databases, no redis-server.
    await eventually(
      async () => ((await benchTopics()).some((t) => !before.has(t)) ? undefined : true),
      30_000,
      "the run's topics deleted",
    );
    const groups = (await admin.listGroups()).groups.filter((g) => g.groupId.startsWith('bench.'));
    expect(groups).toEqual([]);
    const dbs = (await mongo.db().admin().listDatabases()).databases.filter((d) =>
      d.name.startsWith('bench_'),
    );
    expect(dbs).toEqual([]);
    expect(spawnSync('pgrep', ['-f', 'bench-redis']).status).toBe(1);
  } finally {
    await admin.disconnect();
    await mongo.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
