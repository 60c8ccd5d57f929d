// `npm run demo`: the main job end to end on the local stack. Starts the stack when nothing is
// configured, runs the processor, publishes a few thousand sample events (some late, some sent twice),
// waits until every stage has caught up, then prints what was applied, what was flagged out of order,
// and replay reports — including one table row changed behind the processor's back and repaired.
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../api/admin';
import { APPOINTMENTS_INPUT } from '../../appointments';
import { APPOINTMENTS } from '../../appointments/tables';
import { loadConfig, type Config } from '../../config';
import { KeyflowError } from '../../errors';
import { CONVERSIONS_TOPIC } from '../../conversions/schemas';
import type { Logger } from '../../logger';
import { replayEntity } from '../../replay/engine';
import { replayMany } from '../../replay/many';
import { differencesTable, entitySummary, formatDuration } from '../../replay/report';
import { stackContext, up } from '../../services/stack';
import { appDataflows } from '../dataflows';
import { startApp, untilSignal, type RunningApp } from '../main';
import { Progress, type ProgressOutput } from '../../cli/progress';
import { generate, type Published } from './generate';
import { eventsPerSecond, summaryLines, type DemoTimings } from './summary';

export interface DemoOptions {
  once: boolean;
  log: Logger;
  out: (line: string) => void;
  /** Where the log goes, for the summary; undefined when it goes to a stream the user sees. */
  logFile?: string;
  /** Where the publish and processing bars are drawn (a bar on a TTY, quarter lines elsewhere). */
  terminal: ProgressOutput;
}

const DAY = 86_400_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Uses the environment's services when all three are set; otherwise the local stack (started if needed). */
export async function demoConfig(
  out: (line: string) => void,
): Promise<{ config: Config; services: DemoTimings['services'] }> {
  const env = process.env;
  if (env.KAFKA_BROKERS && env.SCHEMA_REGISTRY_URL && env.MONGO_URL) {
    return { config: loadConfig(env), services: 'environment' };
  }
  out(
    'No KAFKA_BROKERS/SCHEMA_REGISTRY_URL/MONGO_URL set: using the local stack (first run downloads its jars).',
  );
  let started = false;
  await up(
    stackContext(loadConfig(env, { require: [] }), (line) => {
      if (line.startsWith('starting ')) started = true;
      out(`  ${line}`);
    }),
  );
  return { config: loadConfig(env), services: started ? 'local-started' : 'local-running' };
}

async function publish(app: RunningApp, events: Published[], progress: Progress): Promise<void> {
  const { producer } = app.processor.context;
  progress.phase('published', events.length);
  for (let i = 0; i < events.length; i += 500) {
    await producer.publish(
      events.slice(i, i + 500).map((e) => ({
        topic: e.topic === 'appointments' ? APPOINTMENTS_INPUT : CONVERSIONS_TOPIC,
        key: e.key,
        value: e.value,
        eventId: e.value.eventId,
        occurredAt: e.value.occurredAt,
      })),
    );
    progress.tick(Math.min(i + 500, events.length));
  }
  progress.end();
}

/**
 * Waits until every stage is in its group, so the end-to-end rate below measures processing rather than
 * the first rebalance.
 */
async function joined(app: RunningApp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!app.processor.runners.every((r) => r.ready)) {
    if (Date.now() > deadline) {
      throw new KeyflowError(
        'UNREACHABLE',
        `the stages did not join their groups within ${timeoutMs / 1000}s`,
      );
    }
    await sleep(100);
  }
}

/**
 * Waits until every stage group has committed up to the end of its input partitions. The bar counts the
 * published events less the stages' total lag, which includes what downstream stages have yet to read,
 * so it can step back while a later stage catches its first events.
 */
async function caughtUp(
  app: RunningApp,
  total: number,
  progress: Progress,
  timeoutMs = 300_000,
): Promise<void> {
  const { lag } = app.processor.context;
  const deadline = Date.now() + timeoutMs;
  progress.phase('processed', total);
  for (;;) {
    await lag.poll();
    const parts = lag.snapshot().groups.flatMap((g) => g.partitions);
    const behind = parts.reduce((n, p) => n + p.lag, 0);
    if (parts.length > 0 && behind === 0 && parts.every((p) => p.committed !== null || p.end === '0')) {
      progress.tick(total, '0 behind');
      progress.end();
      return;
    }
    progress.tick(Math.max(0, total - behind), `${behind} behind`);
    if (Date.now() > deadline) {
      throw new KeyflowError(
        'UNREACHABLE',
        `the stages did not catch up within ${timeoutMs / 1000}s (see /ops)`,
      );
    }
    await sleep(500);
  }
}

async function getJson(port: number, path: string, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return (await res.json()) as Record<string, unknown>;
}

/** Per tenant, how many distinct conversion events of each type were published: what the totals must say. */
function conversionTruth(events: Published[]): Map<string, Record<string, number>> {
  const seen = new Set<string>();
  const truth = new Map<string, Record<string, number>>();
  for (const e of events) {
    if (e.topic !== 'conversions' || seen.has(e.value.eventId)) continue;
    seen.add(e.value.eventId);
    const row = truth.get(e.value.tenantId) ?? {};
    row[e.value.conversionType] = (row[e.value.conversionType] ?? 0) + 1;
    truth.set(e.value.tenantId, row);
  }
  return truth;
}

function sortKeys(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  const { out, log } = opts;
  const wallStart = Date.now();
  const demo = await demoConfig(out);
  const { services } = demo;
  // The demo's admin surface takes a token of this session, printed at the end for the /ops log-in.
  const adminToken = randomBytes(24).toString('base64url');
  const config = { ...demo.config, adminToken: sha256Hex(adminToken), adminTokenHash: undefined };
  const servicesMs = services === 'environment' ? 0 : Date.now() - wallStart;
  // Which Node and which Kafka client ran it: npm scripts resolve the project's own Node 24 first.
  out(
    `Starting the processor (every stage + the HTTP server) on Node ${process.version}, Kafka client ${config.kafkaAdapter}...`,
  );
  const processorStart = Date.now();
  const app = await startApp(config, log);
  try {
    await joined(app);
    const processorMs = Date.now() - processorStart;
    const runId = `demo${Date.now().toString(36)}`;
    const events = generate({
      seed: 20261121,
      runId,
      tenants: 3,
      appointments: 700,
      leads: 400,
      conversionsPerLead: 4,
      lateShare: 0.08,
      duplicateShare: 0.04,
      start: Date.now() - 30 * DAY,
    });
    const late = events.filter((e) => e.late).length;
    const dups = events.filter((e) => e.duplicate).length;
    out(
      `Publishing ${events.length} events (run ${runId}): ${late} deliberately late, ${dups} sent twice...`,
    );
    const started = Date.now();
    const progress = new Progress(opts.terminal);
    await publish(app, events, progress);
    await caughtUp(app, events.length, progress);
    const endToEndMs = Date.now() - started;
    out(
      `All stages caught up in ${formatDuration(endToEndMs)} (${eventsPerSecond(events.length, endToEndMs)} events/s end to end).`,
    );

    const tenants = [...new Set(events.map((e) => e.value.tenantId))];
    const truth = conversionTruth(events);
    let flagged = 0;
    let totalsMatch = true;
    out('');
    out('Applied, per tenant (from the query API), against the ground truth of the distinct events:');
    for (const t of tenants) {
      const ooo = await getJson(app.adminPort, `/tenants/${t}/out-of-order?limit=1`, adminToken);
      const totals = await getJson(
        app.adminPort,
        `/tenants/${t}/conversions/totals?from=0&to=${Date.now() + DAY}`,
        adminToken,
      );
      flagged += Number(ooo.count ?? 0);
      const rows = (totals.totals ?? []) as { conversionType: string; count: number }[];
      const got = Object.fromEntries(rows.map((r) => [r.conversionType, r.count]));
      const want = truth.get(t) ?? {};
      const same = JSON.stringify(sortKeys(got)) === JSON.stringify(sortKeys(want));
      totalsMatch &&= same;
      const shown = Object.entries(sortKeys(got))
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      out(
        `  ${t}: ${ooo.count ?? 0} appointment change(s) flagged out of order; conversions ${shown} ${same ? '(= truth)' : `(truth: ${JSON.stringify(want)})`}`,
      );
    }
    const lateAppointments = events.filter(
      (e) => e.late && !e.duplicate && e.topic === 'appointments',
    ).length;
    out(
      `Late appointment events published: ${lateAppointments}; flagged out of order in RSAppointmentChanges: ${flagged}.`,
    );
    out(
      `Duplicates published: ${dups}; conversion totals ${totalsMatch ? 'equal' : 'DIFFER from'} the counts of distinct events, so ${totalsMatch ? 'none was counted twice' : 'something was counted wrongly'}.`,
    );

    const tables = appDataflows().flatMap((f) => f.replay);
    const { db } = app.processor.context;
    // The batched path: each kind's sample read with one `$in` per table, by _id (replay/many.ts).
    let differences = 0;
    let sampled = 0;
    for (const [topic, entity] of [
      ['appointments', 'appointmentId'],
      ['conversions', 'leadId'],
    ] as const) {
      const ids = [...new Set(events.filter((e) => e.topic === topic).map((e) => e.key))].filter(
        (_, i) => i % 10 === 0,
      );
      const kind = tables.filter((t) => t.entity === entity);
      differences += (await replayMany(db, kind, ids)).counts.differences;
      sampled += ids.length;
    }
    out('');
    out(
      `Replay of ${sampled} entities (every 10th) from their archived events: ${differences} difference(s).`,
    );

    const victimEvent = events.find((e) => e.topic === 'appointments')!;
    const victim = victimEvent.key;
    await db
      .collection<{ _id: string }>(APPOINTMENTS)
      .updateOne({ _id: victim }, { $set: { status: 'TAMPERED' } });
    out(`Changed ${APPOINTMENTS}/${victim}.status behind the processor's back; replay --id finds it:`);
    const found = await replayEntity(db, tables, victim);
    out(differencesTable(found.differences));
    const fixed = await replayEntity(db, tables, victim, { repair: true });
    out(`replay --id ${victim} --repair: ${entitySummary(fixed)}`);

    out('');
    out(
      `API on http://127.0.0.1:${app.port}: /metrics, /readyz; admin on http://127.0.0.1:${app.adminPort}:`,
    );
    const t = victimEvent.value.tenantId;
    out(`  /ops, /tenants/${t}/appointments/${victim}, /tenants/${t}/out-of-order, /replay/${victim}`);
    out(`  admin token of this session (for the /ops log-in or "Authorization: Bearer"): ${adminToken}`);
    out('');
    const timings = { services, servicesMs, processorMs, events: events.length, endToEndMs };
    for (const line of summaryLines({ ...timings, wallMs: Date.now() - wallStart, logFile: opts.logFile }))
      out(line);
    if (!opts.once) {
      out('Serving until Ctrl-C.');
      await untilSignal(log);
    }
    return differences === 0 && fixed.differences.length === 0 && totalsMatch && flagged === lateAppointments
      ? 0
      : 1;
  } finally {
    await app.stop();
  }
}
