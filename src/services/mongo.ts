// The local MongoDB-protocol server behind `keyflow services`: FerretDB v1 (SQLite backend, built with
// `go install`), mongo-java-server (H2 MVStore backend, jars from Maven Central) or SecantusDB (WiredTiger,
// a PyPI package in a cached virtualenv), chosen by ctx.mongoServer.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { KeyflowError } from '../errors';
import { logFile, portOpen, runChecked, runWatched, spawnDetached } from './process';
import type { LocalService, ServiceEndpoint, StackContext } from './types';

export const FERRETDB_VERSION = '1.24.2';
export const MONGO_JAVA_SERVER_VERSION = '1.47.0';
// A beta: flags and behaviour may shift between releases, so the exact release is pinned.
export const SECANTUSDB_VERSION = '0.7.0b3';
const SLF4J_VERSION = '2.0.17';
const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';
const JAVA_MAIN_CLASS = 'KeyflowMongoServer';
const JAVA_SOURCE = path.join('services', 'mongo-java-server', `${JAVA_MAIN_CLASS}.java`);

const BUILD_TIMEOUT_MS = 20 * 60_000;

// ---- FerretDB -------------------------------------------------------------------------------------------

function ferretdbBinary(ctx: StackContext): string {
  return path.join(ctx.cacheDir, `ferretdb-${FERRETDB_VERSION}`, 'bin', 'ferretdb');
}

function ferretdbDataDir(ctx: StackContext): string {
  return path.join(ctx.stateDir, 'data', 'ferretdb');
}

function ferretdbStateDir(ctx: StackContext): string {
  return path.join(ctx.stateDir, 'data', 'ferretdb-state');
}

async function installFerretdb(ctx: StackContext): Promise<void> {
  const binary = ferretdbBinary(ctx);
  if (fs.existsSync(binary)) return;
  requireTool(
    'go',
    ['version'],
    'FerretDB is built from source; install Go 1.24+ or choose mongo-java-server',
  );
  ctx.progress(`building FerretDB v${FERRETDB_VERSION} with go install (first time only, about a minute)...`);

  // A plain `go install .../cmd/ferretdb@v1.24.x` builds a binary that panics at startup: the release
  // version is read from build/version/version.txt, which is generated at release time and not part of
  // the Go module (FerretDB issue #2982). `go install pkg@version` also reads the module's version list
  // for deprecation notices, which some proxies refuse. So: fetch exactly the pinned module, install from
  // a writable copy that has version.txt, then drop the copy.
  const download = runChecked('go', ['mod', 'download', '-json', `${FERRETDB_MODULE}@v${FERRETDB_VERSION}`], {
    timeout: BUILD_TIMEOUT_MS,
  });
  const moduleDir = (JSON.parse(download) as { Dir?: string }).Dir;
  if (!moduleDir) {
    throw new KeyflowError('SERVICE_INSTALL_FAILED', `go mod download gave no source folder:\n${download}`, {
      retriable: false,
    });
  }
  const src = path.join(ctx.cacheDir, `ferretdb-${FERRETDB_VERSION}`, 'src');
  fs.rmSync(src, { recursive: true, force: true });
  fs.cpSync(moduleDir, src, { recursive: true });
  makeWritable(src); // the module cache is read-only and cpSync keeps the modes
  fs.writeFileSync(path.join(src, 'build', 'version', 'version.txt'), `v${FERRETDB_VERSION}\n`);
  await runWatched(
    'go',
    ['install', '-trimpath', './cmd/ferretdb'],
    {
      cwd: src,
      timeout: BUILD_TIMEOUT_MS,
      // The SQLite driver FerretDB uses is pure Go, so no C toolchain is needed.
      env: { ...process.env, GOBIN: path.dirname(binary), CGO_ENABLED: '0' },
    },
    {
      progress: ctx.progress,
      everyMs: 10_000,
      report: (ms) => `still building FerretDB (${Math.round(ms / 1000)}s)`,
    },
  );
  fs.rmSync(src, { recursive: true, force: true });
  if (!fs.existsSync(binary)) {
    throw new KeyflowError('SERVICE_INSTALL_FAILED', `go install finished but ${binary} is missing`, {
      retriable: false,
    });
  }
}

function makeWritable(dir: string): void {
  fs.chmodSync(dir, 0o755);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) makeWritable(full);
    else if (entry.isFile()) fs.chmodSync(full, 0o644);
  }
}

function startFerretdb(ctx: StackContext): number {
  const binary = ferretdbBinary(ctx);
  if (!fs.existsSync(binary)) throw notInstalled(ctx);
  const dataDir = ferretdbDataDir(ctx);
  const stateDir = ferretdbStateDir(ctx);
  fs.mkdirSync(dataDir, { recursive: true });
  fs.mkdirSync(stateDir, { recursive: true });
  return spawnDetached(ctx, 'mongo', binary, [
    `--listen-addr=127.0.0.1:${ctx.ports.mongo}`,
    '--handler=sqlite',
    // The trailing slash matters: FerretDB wants a directory URI and keeps one SQLite file per database.
    `--sqlite-url=file:${dataDir}/`,
    `--state-dir=${stateDir}`,
    '--telemetry=disable',
    // The debug/metrics HTTP listener defaults to the fixed 127.0.0.1:8088, which would clash with other
    // stacks on the machine; Keyflow does not use it.
    '--debug-addr=-',
    '--log-format=text',
  ]);
}

// ---- mongo-java-server ----------------------------------------------------------------------------------

/**
 * The compiled launcher lives in a folder named for its source's hash, so a launcher changed in one
 * checkout never replaces the classes another checkout's server was started from or is starting from.
 */
function javaServerDirs(ctx: StackContext) {
  const root = path.join(ctx.cacheDir, `mongo-java-server-${MONGO_JAVA_SERVER_VERSION}`);
  const source = findRepoFile(JAVA_SOURCE);
  const hash = crypto.createHash('sha256').update(fs.readFileSync(source)).digest('hex').slice(0, 16);
  return { root, source, libs: path.join(root, 'libs'), classes: path.join(root, `classes-${hash}`) };
}

function javaServerPom(): string {
  const dep = (group: string, artifact: string, version: string) =>
    `    <dependency><groupId>${group}</groupId><artifactId>${artifact}</artifactId><version>${version}</version></dependency>`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!-- Generated by Keyflow: only used to resolve the mongo-java-server jars into ./libs. -->',
    '<project xmlns="http://maven.apache.org/POM/4.0.0">',
    '  <modelVersion>4.0.0</modelVersion>',
    '  <groupId>keyflow.local</groupId>',
    '  <artifactId>mongo-java-server-runtime</artifactId>',
    `  <version>${MONGO_JAVA_SERVER_VERSION}</version>`,
    '  <packaging>pom</packaging>',
    '  <dependencies>',
    dep('de.bwaldvogel', 'mongo-java-server-h2-backend', MONGO_JAVA_SERVER_VERSION),
    // Without an SLF4J provider the server's own log lines (bind address, errors) are silently dropped.
    dep('org.slf4j', 'slf4j-simple', SLF4J_VERSION),
    '  </dependencies>',
    '</project>',
    '',
  ].join('\n');
}

async function installJavaServer(ctx: StackContext): Promise<void> {
  const { root, source, libs, classes } = javaServerDirs(ctx);
  const libsComplete = path.join(libs, '.complete');
  const compiled = fs.existsSync(path.join(classes, `${JAVA_MAIN_CLASS}.class`));
  if (fs.existsSync(libsComplete) && compiled) return;

  requireTool('java', ['-version'], 'mongo-java-server needs a Java 11+ runtime (JDK for javac)');
  fs.mkdirSync(root, { recursive: true });
  if (!fs.existsSync(libsComplete)) {
    requireTool(
      'mvn',
      ['-v'],
      'the mongo-java-server jars are resolved with Maven; install it or choose ferretdb',
    );
    ctx.progress(`resolving mongo-java-server ${MONGO_JAVA_SERVER_VERSION} jars from Maven Central...`);
    fs.writeFileSync(path.join(root, 'pom.xml'), javaServerPom());
    // Resolve into a side folder and rename, so an interrupted download never looks complete.
    const partial = `${libs}.partial`;
    fs.rmSync(partial, { recursive: true, force: true });
    await runWatched(
      'mvn',
      ['-q', '-B', 'dependency:copy-dependencies', `-DoutputDirectory=${partial}`, '-DincludeScope=runtime'],
      { cwd: root, timeout: BUILD_TIMEOUT_MS },
      {
        progress: ctx.progress,
        everyMs: 10_000,
        report: (ms) => `still resolving mongo-java-server jars (${Math.round(ms / 1000)}s)`,
      },
    );
    fs.rmSync(libs, { recursive: true, force: true });
    fs.renameSync(partial, libs);
    fs.writeFileSync(libsComplete, `${new Date().toISOString()}\n`);
  }

  // Recompiled whenever the launcher source in the repo changes, not only on first install: into a side
  // folder renamed into place, so a half-compiled launcher is never started.
  ctx.progress(`compiling ${JAVA_SOURCE}...`);
  const partial = `${classes}.partial-${process.pid}`;
  fs.rmSync(partial, { recursive: true, force: true });
  fs.mkdirSync(partial, { recursive: true });
  runChecked(javaTool('javac'), ['-cp', path.join(libs, '*'), '-d', partial, source], {
    timeout: BUILD_TIMEOUT_MS,
  });
  try {
    fs.renameSync(partial, classes);
  } catch (err) {
    // Another `services up` compiled the same source first: its classes are ours.
    fs.rmSync(partial, { recursive: true, force: true });
    if (!fs.existsSync(path.join(classes, `${JAVA_MAIN_CLASS}.class`))) throw err;
  }
}

function javaServerDataFile(ctx: StackContext): string {
  return path.join(ctx.stateDir, 'data', 'mongo-java-server', 'keyflow.mv.db');
}

function startJavaServer(ctx: StackContext): number {
  const { libs, classes } = javaServerDirs(ctx);
  if (!fs.existsSync(path.join(classes, `${JAVA_MAIN_CLASS}.class`))) throw notInstalled(ctx);
  const dataFile = javaServerDataFile(ctx);
  fs.mkdirSync(path.dirname(dataFile), { recursive: true });
  return spawnDetached(ctx, 'mongo', javaTool('java'), [
    '-cp',
    [path.join(libs, '*'), classes].join(path.delimiter),
    JAVA_MAIN_CLASS,
    '127.0.0.1',
    String(ctx.ports.mongo),
    dataFile,
  ]);
}

// ---- SecantusDB -----------------------------------------------------------------------------------------

export interface Step {
  command: string;
  args: string[];
}

/** The virtualenv lives in the cache, one per pinned release, so a fresh clone reuses it. */
export function secantusVenv(cacheDir: string): string {
  return path.join(cacheDir, `secantusdb-${SECANTUSDB_VERSION}`, 'venv');
}

/** What `install` runs, in order: create the virtualenv, then pip-install exactly the pinned release. */
export function secantusInstallSteps(venv: string, python: string): Step[] {
  return [
    { command: python, args: ['-m', 'venv', venv] },
    {
      command: path.join(venv, 'bin', 'python'),
      args: [
        '-m',
        'pip',
        'install',
        '--no-input',
        '--disable-pip-version-check',
        // Only the wheel: a source build of the bundled WiredTiger would need a C toolchain and minutes.
        '--only-binary=secantusdb',
        `secantusdb==${SECANTUSDB_VERSION}`,
      ],
    },
  ];
}

/** The daemon's command line. */
export function secantusStartArgs(opts: { port: number; dataDir: string; configFile: string }): string[] {
  return [
    // An explicit --config turns off secantusd-py's search of ./, ~/.secantus and /etc/secantus for a
    // secantusd.toml, so a file someone left there cannot change the port, auth or storage of ours.
    `--config=${opts.configFile}`,
    '--host=127.0.0.1',
    `--port=${opts.port}`,
    `--storage-path=${opts.dataDir}`,
    '--log-level=INFO',
    // The default single-node replica-set advertisement stays on: it is what lets drivers open
    // transactions and change streams; our URL connects directly, so the advertised host is never used.
  ];
}

function installSecantus(ctx: StackContext): void {
  const venv = secantusVenv(ctx.cacheDir);
  // The marker is written only after pip succeeded; a venv without it is a broken earlier attempt.
  const complete = path.join(venv, '.keyflow-complete');
  if (fs.existsSync(complete)) return;
  // Whichever python3 comes first on the PATH; pip picks the wheel built for it (3.10 and newer).
  const python = 'python3';
  requireTool(
    python,
    ['-c', 'import venv, ensurepip'],
    'SecantusDB is installed with pip into a virtualenv; install Python 3.10+ with its venv module (Debian: python3-venv) or choose mongo-java-server',
  );
  ctx.progress(`installing SecantusDB ${SECANTUSDB_VERSION} from PyPI into ${venv} (first time only)...`);
  fs.rmSync(venv, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(venv), { recursive: true });
  for (const step of secantusInstallSteps(venv, python)) {
    runChecked(step.command, step.args, { timeout: BUILD_TIMEOUT_MS });
  }
  if (!fs.existsSync(secantusDaemon(ctx))) {
    throw new KeyflowError('SERVICE_INSTALL_FAILED', `pip finished but ${secantusDaemon(ctx)} is missing`, {
      retriable: false,
    });
  }
  fs.writeFileSync(complete, `secantusdb==${SECANTUSDB_VERSION} ${new Date().toISOString()}\n`);
}

function secantusDaemon(ctx: StackContext): string {
  return path.join(secantusVenv(ctx.cacheDir), 'bin', 'secantusd-py');
}

function startSecantus(ctx: StackContext): number {
  const daemon = secantusDaemon(ctx);
  if (!fs.existsSync(daemon)) throw notInstalled(ctx);
  const dataDir = path.join(ctx.stateDir, 'data', 'secantusdb');
  fs.mkdirSync(dataDir, { recursive: true });
  // Empty on purpose: every setting we rely on is a flag; the file only stops the config search.
  const configFile = path.join(ctx.stateDir, 'data', 'secantusd.toml');
  if (!fs.existsSync(configFile)) {
    fs.writeFileSync(configFile, '# written by keyflow; settings are passed as flags\n');
  }
  return spawnDetached(
    ctx,
    'mongo',
    daemon,
    secantusStartArgs({ port: ctx.ports.mongo, dataDir, configFile }),
    {
      // The daemon's log lines go to our log file at once instead of sitting in a pipe buffer.
      env: { PYTHONUNBUFFERED: '1' },
    },
  );
}

// ---- shared ---------------------------------------------------------------------------------------------

function mongoUrl(ctx: StackContext): string {
  // directConnection: talk to this one server even if its hello ever advertises other hosts.
  return `mongodb://127.0.0.1:${ctx.ports.mongo}/?directConnection=true`;
}

/** Honours JAVA_HOME so a machine with several JDKs uses the one the user picked. */
function javaTool(name: 'java' | 'javac'): string {
  const home = process.env.JAVA_HOME;
  return home ? path.join(home, 'bin', name) : name;
}

function requireTool(command: string, args: string[], hint: string): void {
  try {
    runChecked(command === 'java' ? javaTool('java') : command, args, { timeout: 30_000 });
  } catch (err) {
    throw new KeyflowError('SERVICE_INSTALL_FAILED', `\`${command}\` is not usable: ${hint}`, {
      retriable: false,
      cause: err,
    });
  }
}

/** Finds a file kept in the repo, whether we run from src/ (tsx, jest) or from the compiled dist/. */
function findRepoFile(relative: string): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, relative);
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) {
      throw new KeyflowError('SERVICE_INSTALL_FAILED', `cannot find ${relative} above ${__dirname}`, {
        retriable: false,
      });
    }
  }
}

function notInstalled(ctx: StackContext): KeyflowError {
  return new KeyflowError('SERVICE_NOT_INSTALLED', `${ctx.mongoServer} is not installed; run install first`, {
    retriable: false,
  });
}

export const mongo: LocalService = {
  name: 'mongo',

  async install(ctx) {
    if (ctx.mongoServer === 'ferretdb') await installFerretdb(ctx);
    else if (ctx.mongoServer === 'secantusdb') installSecantus(ctx);
    else await installJavaServer(ctx);
  },

  async start(ctx) {
    // Something else on the port would answer our pings and quietly receive Keyflow's state.
    if (await portOpen(ctx.ports.mongo)) {
      throw new KeyflowError('SERVICE_PORT_BUSY', `port ${ctx.ports.mongo} is already in use`, {
        retriable: false,
        details: { port: ctx.ports.mongo, log: logFile(ctx, 'mongo') },
      });
    }
    if (ctx.mongoServer === 'ferretdb') return startFerretdb(ctx);
    if (ctx.mongoServer === 'secantusdb') return startSecantus(ctx);
    return startJavaServer(ctx);
  },

  async ready(ctx) {
    if (!(await portOpen(ctx.ports.mongo))) return false;
    const client = new MongoClient(mongoUrl(ctx), {
      serverSelectionTimeoutMS: 1500,
      connectTimeoutMS: 1500,
      socketTimeoutMS: 3000,
    });
    try {
      await client.connect();
      const res = await client.db('admin').admin().command({ ping: 1 });
      return res.ok === 1;
    } catch {
      return false;
    } finally {
      await client.close().catch(() => undefined);
    }
  },

  endpoint(ctx): ServiceEndpoint {
    return { env: { MONGO_URL: mongoUrl(ctx) } };
  },

  label(ctx) {
    return ctx.mongoServer === 'ferretdb'
      ? `FerretDB ${FERRETDB_VERSION}`
      : `mongo-java-server ${MONGO_JAVA_SERVER_VERSION}`;
  },

  dataDirs(ctx) {
    return ctx.mongoServer === 'ferretdb'
      ? [ferretdbDataDir(ctx), ferretdbStateDir(ctx)]
      : [path.dirname(javaServerDataFile(ctx))];
  },
};
