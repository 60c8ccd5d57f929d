// Local Apache Kafka for `keyflow services`: a single KRaft node (broker + controller in one JVM) on
// 127.0.0.1, assembled from Maven Central jars so neither Docker nor a Kafka download mirror is needed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { KeyflowError } from '../errors';
import { portOpen, runChecked, runWatched, spawnDetached } from './process';
import type { LocalService, ServiceEndpoint, StackContext } from './types';

/** Newest 3.9.x on Maven Central; 3.9 is the last line that still speaks the old protocol versions kafkajs uses. */
export const KAFKA_VERSION = '3.9.2';
// The logging binding Kafka 3.9's own distribution ships (slf4j 1.7 + reload4j).
const SLF4J_VERSION = '1.7.36';
const RELOAD4J_VERSION = '1.2.25';
const DEPENDENCY_PLUGIN_VERSION = '3.8.1';

const MARKER = '.installed';

function homeDir(ctx: StackContext): string {
  return path.join(ctx.cacheDir, `kafka-${KAFKA_VERSION}`);
}
function libsDir(ctx: StackContext): string {
  return path.join(homeDir(ctx), 'libs');
}
function log4jFile(ctx: StackContext): string {
  return path.join(homeDir(ctx), 'log4j.properties');
}
function configDir(ctx: StackContext): string {
  return path.join(ctx.stateDir, 'kafka');
}
function dataDir(ctx: StackContext): string {
  return path.join(ctx.stateDir, 'data', 'kafka');
}
function javaBin(): string {
  return process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}
/** `-cp dir/*` is expanded by the JVM itself, so the argument must reach it unexpanded (no shell involved). */
function classpath(ctx: StackContext): string {
  return path.join(libsDir(ctx), '*');
}

const POM = `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.keyflow.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>${KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>${KAFKA_VERSION}</version>
      <exclusions>
        <!-- ZooKeeper (still on the broker's classpath in 3.9) drags in logback; a second slf4j binding
             would make slf4j pick one at random and ignore our log4j.properties. -->
        <exclusion><groupId>ch.qos.logback</groupId><artifactId>*</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>${SLF4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>${RELOAD4J_VERSION}</version>
    </dependency>
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <!-- Maven 3.8's built-in default for this plugin is from 2013; pin a current one. -->
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>${DEPENDENCY_PLUGIN_VERSION}</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
`;

// Everything goes to stdout, which spawnDetached appends to <stateDir>/logs/kafka.log.
const LOG4J = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n

log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
# Full config dumps (hundreds of lines per component), metadata-loader and per-partition load chatter.
log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.org.apache.kafka.image.loader=WARN
log4j.logger.kafka.coordinator.group.GroupMetadataManager=WARN
log4j.logger.kafka.log=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.kafka.cluster.Partition=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
log4j.logger.org.apache.zookeeper=WARN
`;

function serverProperties(ctx: StackContext): string {
  const { kafka: port, kafkaController: controllerPort } = ctx.ports;
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': dataDir(ctx),

    // One node: every replication factor / ISR requirement has to be 1.
    'num.partitions': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    'offsets.topic.replication.factor': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    // Fewer internal partitions: the first consumer group / transaction creates them, 50 each is slow.
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.num.partitions': 10,

    // Topics are declared by the topology, never created by a stray produce or fetch.
    'auto.create.topics.enable': false,
    // Dev and tests restart consumers constantly; don't sit 3 s in every first rebalance.
    'group.initial.rebalance.delay.ms': 0,

    // After a crash (or SIGKILL) the restarted broker is refused until its old registration's session
    // expires (default 9 s); one node shares the JVM with its controller, so a shorter session is safe.
    'broker.heartbeat.interval.ms': 1000,
    'broker.session.timeout.ms': 4000,

    // Sized for a laptop / 2-core CI box rather than a production broker.
    'num.network.threads': 2,
    'num.io.threads': 4,
    'num.recovery.threads.per.data.dir': 1,
    'log.cleaner.threads': 1,
    'log.cleaner.dedupe.buffer.size': 32 * 1024 * 1024,
  };
  const lines = Object.entries(props).map(([k, v]) => `${k}=${String(v)}`);
  return `# Written by keyflow on every start; edits here are overwritten.\n${lines.join('\n')}\n`;
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
  writeIfChanged(log4jFile(ctx), LOG4J);
  if (fs.existsSync(path.join(home, MARKER))) return;

  ctx.progress(`resolving Kafka ${KAFKA_VERSION} jars from Maven Central (first time only)...`);
  fs.writeFileSync(path.join(home, 'pom.xml'), POM);
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
  if (!jars.some((j) => j.startsWith(`kafka_2.13-${KAFKA_VERSION}`))) {
    throw new KeyflowError(
      'SERVICE_INSTALL_FAILED',
      `Maven did not deliver kafka_2.13-${KAFKA_VERSION}.jar`,
      { retriable: false, details: { jars } },
    );
  }
  fs.rmSync(libsDir(ctx), { recursive: true, force: true });
  fs.renameSync(staging, libsDir(ctx));
  fs.writeFileSync(path.join(home, MARKER), `${jars.sort().join('\n')}\n`);
  ctx.progress(`Kafka ${KAFKA_VERSION} ready (${jars.length} jars in ${libsDir(ctx)})`);
}

/** KRaft refuses to start on an unformatted log dir; format it once with Kafka's own storage tool. */
function formatIfNeeded(ctx: StackContext, propsFile: string): void {
  if (fs.existsSync(path.join(dataDir(ctx), 'meta.properties'))) return;
  ctx.progress('formatting Kafka storage (first start of this state dir)...');
  runChecked(
    javaBin(),
    [
      `-Dlog4j.configuration=file:${log4jFile(ctx)}`,
      '-cp',
      classpath(ctx),
      'kafka.tools.StorageTool',
      'format',
      '--ignore-formatted',
      '-t',
      clusterId(ctx),
      '-c',
      propsFile,
    ],
    { cwd: configDir(ctx) },
  );
}

async function start(ctx: StackContext): Promise<number> {
  if (!fs.existsSync(path.join(homeDir(ctx), MARKER))) {
    throw new KeyflowError(
      'SERVICE_NOT_INSTALLED',
      `Kafka ${KAFKA_VERSION} is not installed; run install first`,
      { retriable: false },
    );
  }
  // Catch the common "another Kafka is already running" case here instead of in a JVM stack trace.
  for (const port of [ctx.ports.kafka, ctx.ports.kafkaController]) {
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
  fs.writeFileSync(propsFile, serverProperties(ctx));
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
    `-Dlog4j.configuration=file:${log4jFile(ctx)}`,
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
  const admin = new Kafka({
    clientId: 'keyflow-services-probe',
    brokers: [`127.0.0.1:${ctx.ports.kafka}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 2000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    // Metadata lists only registered, unfenced brokers, so a broker here can actually serve requests.
    const { brokers } = await admin.describeCluster();
    return brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function endpoint(ctx: StackContext): ServiceEndpoint {
  return { env: { KAFKA_BROKERS: `127.0.0.1:${ctx.ports.kafka}` } };
}

export const kafka: LocalService = { name: 'kafka', install, start, ready, endpoint };
