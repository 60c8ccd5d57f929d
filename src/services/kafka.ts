// Local Apache Kafka for `keyflow services`: a single KRaft node (broker + controller in one JVM) on
// 127.0.0.1, assembled from Maven Central jars so neither Docker nor a Kafka download mirror is needed.
// The release is a setting (KEYFLOW_KAFKA_VERSION, 4.x by default, 3.9.x on request); what differs between
// the two lines lives in kafka-config.ts.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { brokerServes } from '../kafka/kafkajs-probe';
import { KeyflowError } from '../errors';
import {
  formatArgs,
  formatMismatch,
  javaMajor,
  logConfig,
  minimumJava,
  runtimePom,
  serverProperties,
} from './kafka-config';
import { portOpen, runChecked, runWatched, spawnDetached } from './process';
import type { LocalService, ServiceEndpoint, StackContext } from './types';

/** Before the version became a setting every state dir was formatted by this one (and left no marker). */
const LEGACY_FORMAT_VERSION = '3.9.2';
const MARKER = '.installed';

function homeDir(ctx: StackContext): string {
  return path.join(ctx.cacheDir, `kafka-${ctx.kafkaVersion}`);
}
function libsDir(ctx: StackContext): string {
  return path.join(homeDir(ctx), 'libs');
}
function logConfigFile(ctx: StackContext): string {
  return path.join(homeDir(ctx), logConfig(ctx.kafkaVersion).file);
}
function configDir(ctx: StackContext): string {
  return path.join(ctx.stateDir, 'kafka');
}
function dataDir(ctx: StackContext): string {
  return path.join(ctx.stateDir, 'data', 'kafka');
}
/** Beside the log dir rather than in it: Kafka reads every entry of a log dir as a partition or its own file. */
function formattedByFile(ctx: StackContext): string {
  return path.join(ctx.stateDir, 'data', 'kafka.formatted-by');
}
function javaBin(): string {
  return process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}
/** `-cp dir/*` is expanded by the JVM itself, so the argument must reach it unexpanded (no shell involved). */
function classpath(ctx: StackContext): string {
  return path.join(libsDir(ctx), '*');
}
function logFlag(ctx: StackContext): string {
  return logConfig(ctx.kafkaVersion).jvmFlag(logConfigFile(ctx));
}

/** The release that formatted this state dir's Kafka data, or undefined when it is not formatted yet. */
function formattedBy(ctx: StackContext): string | undefined {
  if (!fs.existsSync(path.join(dataDir(ctx), 'meta.properties'))) return undefined;
  if (!fs.existsSync(formattedByFile(ctx))) return LEGACY_FORMAT_VERSION;
  return fs.readFileSync(formattedByFile(ctx), 'utf8').trim();
}

/** Same shape as Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe base64 without padding. */
function newClusterId(): string {
  for (;;) {
    const id = crypto.randomBytes(16).toString('base64url');
    // Kafka rejects ids starting with '-' (they read as command-line flags).
    if (!id.startsWith('-')) return id;
  }
}

/** Generated once per state dir and kept, so reformatting is never needed across down/up. */
function clusterId(ctx: StackContext): string {
  const file = path.join(configDir(ctx), 'cluster.id');
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const id = newClusterId();
  fs.writeFileSync(file, `${id}\n`);
  return id;
}

function writeIfChanged(file: string, content: string): void {
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === content) return;
  fs.writeFileSync(file, content);
}

async function install(ctx: StackContext): Promise<void> {
  const home = homeDir(ctx);
  fs.mkdirSync(home, { recursive: true });
  writeIfChanged(logConfigFile(ctx), logConfig(ctx.kafkaVersion).content);
  if (fs.existsSync(path.join(home, MARKER))) return;

  ctx.progress(`resolving Kafka ${ctx.kafkaVersion} jars from Maven Central (first time only)...`);
  fs.writeFileSync(path.join(home, 'pom.xml'), runtimePom(ctx.kafkaVersion));
  // Copy into a scratch dir and rename at the end, so an interrupted install never looks complete.
  const staging = path.join(home, 'libs.tmp');
  fs.rmSync(staging, { recursive: true, force: true });
  await runWatched(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      path.join(home, 'pom.xml'),
      'dependency:copy-dependencies',
      `-DoutputDirectory=${staging}`,
      '-DincludeScope=runtime',
    ],
    { cwd: home },
    {
      progress: ctx.progress,
      everyMs: 10_000,
      report: (ms) => `still resolving Kafka jars (${Math.round(ms / 1000)}s)`,
    },
  );
  const jars = fs.readdirSync(staging).filter((f) => f.endsWith('.jar'));
  if (!jars.some((j) => j.startsWith(`kafka_2.13-${ctx.kafkaVersion}`))) {
    throw new KeyflowError(
      'SERVICE_INSTALL_FAILED',
      `Maven did not deliver kafka_2.13-${ctx.kafkaVersion}.jar`,
      { retriable: false, details: { jars } },
    );
  }
  fs.rmSync(libsDir(ctx), { recursive: true, force: true });
  fs.renameSync(staging, libsDir(ctx));
  fs.writeFileSync(path.join(home, MARKER), `${jars.sort().join('\n')}\n`);
  ctx.progress(`Kafka ${ctx.kafkaVersion} ready (${jars.length} jars in ${libsDir(ctx)})`);
}

/** KRaft refuses to start on an unformatted log dir; format it once with Kafka's own storage tool. */
function formatIfNeeded(ctx: StackContext, propsFile: string): void {
  if (formattedBy(ctx) !== undefined) return;
  ctx.progress(`formatting Kafka ${ctx.kafkaVersion} storage (first start of this state dir)...`);
  runChecked(
    javaBin(),
    [
      logFlag(ctx),
      '-cp',
      classpath(ctx),
      'kafka.tools.StorageTool',
      ...formatArgs(ctx.kafkaVersion, clusterId(ctx), propsFile),
    ],
    { cwd: configDir(ctx) },
  );
  fs.writeFileSync(formattedByFile(ctx), `${ctx.kafkaVersion}\n`);
}

function refuseForeignData(ctx: StackContext): void {
  const problem = formatMismatch(formattedBy(ctx), ctx.kafkaVersion);
  if (problem) throw new KeyflowError('SERVICE_START_FAILED', problem, { retriable: false });
}

/** Kafka 4 brokers are built for Java 17; an older JVM would only fail later with UnsupportedClassVersionError. */
function requireJava(ctx: StackContext): void {
  const needed = minimumJava(ctx.kafkaVersion);
  const out = runChecked(javaBin(), ['-version']);
  const found = javaMajor(out);
  if (found !== undefined && found < needed) {
    throw new KeyflowError(
      'SERVICE_START_FAILED',
      `Kafka ${ctx.kafkaVersion} needs Java ${needed} or newer, but \`${javaBin()}\` is Java ${found}; point JAVA_HOME at a newer JDK or set KEYFLOW_KAFKA_VERSION=3.9.2`,
      { retriable: false },
    );
  }
}

async function preflight(ctx: StackContext): Promise<void> {
  refuseForeignData(ctx);
  requireJava(ctx);
}

async function start(ctx: StackContext): Promise<number> {
  if (!fs.existsSync(path.join(homeDir(ctx), MARKER))) {
    throw new KeyflowError(
      'SERVICE_NOT_INSTALLED',
      `Kafka ${ctx.kafkaVersion} is not installed; run install first`,
      { retriable: false },
    );
  }
  // Catch the common "another Kafka is already running" case here instead of in a JVM stack trace.
  for (const port of [
    ctx.ports.kafka,
    ctx.ports.kafkaController,
    ...(ctx.kafkaProxied ? [ctx.kafkaProxied.port] : []),
  ]) {
    if (await portOpen(port)) {
      throw new KeyflowError(
        'SERVICE_PORT_BUSY',
        `port ${port} on 127.0.0.1 is already in use; cannot start Kafka`,
        { retriable: false, details: { port } },
      );
    }
  }

  fs.mkdirSync(configDir(ctx), { recursive: true });
  fs.mkdirSync(dataDir(ctx), { recursive: true });
  const propsFile = path.join(configDir(ctx), 'server.properties');
  fs.writeFileSync(
    propsFile,
    serverProperties(ctx.kafkaVersion, {
      port: ctx.ports.kafka,
      controllerPort: ctx.ports.kafkaController,
      dataDir: dataDir(ctx),
      proxied: ctx.kafkaProxied,
    }),
  );
  refuseForeignData(ctx);
  formatIfNeeded(ctx, propsFile);

  const jvmArgs = [
    '-Xms256m',
    '-Xmx1g',
    // Kafka's own recommended GC settings (kafka-run-class.sh), minus the GC log files.
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:InitiatingHeapOccupancyPercent=35',
    '-XX:+ExplicitGCInvokesConcurrent',
    // A broker that ran out of heap is useless; die so `services status` notices, rather than limp on.
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    logFlag(ctx),
  ];
  return spawnDetached(
    ctx,
    'kafka',
    javaBin(),
    [...jvmArgs, '-cp', classpath(ctx), 'kafka.Kafka', propsFile],
    { cwd: configDir(ctx) },
  );
}

async function ready(ctx: StackContext): Promise<boolean> {
  // Cheap pre-check: no listener yet means no point building a client.
  if (!(await portOpen(ctx.ports.kafka))) return false;
  return brokerServes(`127.0.0.1:${ctx.ports.kafka}`);
}

function endpoint(ctx: StackContext): ServiceEndpoint {
  return { env: { KAFKA_BROKERS: `127.0.0.1:${ctx.ports.kafka}` } };
}

export const kafka: LocalService = {
  name: 'kafka',
  install,
  preflight,
  start,
  ready,
  endpoint,
  label: (ctx) => `Kafka ${ctx.kafkaVersion}`,
  dataDirs: (ctx) => [dataDir(ctx)],
};
