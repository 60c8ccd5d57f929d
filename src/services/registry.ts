// The local Confluent-compatible schema registry: Apicurio Registry 2.6 (its ready-to-run distribution
// from Maven Central), serving the Confluent API under /apis/ccompat/v7 and keeping schemas in an H2 file.
import fs from 'node:fs';
import path from 'node:path';
import { KeyflowError } from '../errors';
import { bytesOf, downloadReport, mavenLocalRepo, runWatched, spawnDetached } from './process';
import type { LocalService, ServiceEndpoint, StackContext } from './types';

/**
 * Karapace is not on the PyPI we can reach, Confluent's registry is not on Maven Central and Apicurio 3.x
 * does not resolve from it; Apicurio 2.6 publishes its whole runnable app (`-all.zip`) there.
 */
export const APICURIO_VERSION = '2.6.13.Final';
const ARTIFACT = `io.apicurio:apicurio-registry-app:${APICURIO_VERSION}:zip:all`;
const ZIP = `apicurio-registry-app-${APICURIO_VERSION}-all.zip`;
/** Size of ZIP on Maven Central, for the progress line; it changes only with APICURIO_VERSION. */
const ZIP_BYTES = 142_268_239;
const RUNNER_JAR = `apicurio-registry-app-${APICURIO_VERSION}-runner.jar`;
const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1';
/** Apicurio's Confluent-compatibility API (v7 flavour); clients take it as their base URL. */
const CCOMPAT_PATH = '/apis/ccompat/v7';
const MARKER = '.installed';

function homeDir(ctx: StackContext): string {
  return path.join(ctx.cacheDir, `apicurio-registry-${APICURIO_VERSION}`);
}
function appDir(ctx: StackContext): string {
  return path.join(homeDir(ctx), 'app');
}
function dataDir(ctx: StackContext): string {
  return path.join(ctx.stateDir, 'data', 'registry');
}
function javaBin(): string {
  return process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}
function baseUrl(ctx: StackContext): string {
  return `http://127.0.0.1:${ctx.ports.registry}${CCOMPAT_PATH}`;
}

async function install(ctx: StackContext): Promise<void> {
  const home = homeDir(ctx);
  if (fs.existsSync(path.join(home, MARKER)) && fs.existsSync(path.join(appDir(ctx), RUNNER_JAR))) return;
  fs.mkdirSync(home, { recursive: true });
  ctx.progress(
    `fetching Apicurio Registry ${APICURIO_VERSION} from Maven Central (about 140 MB, first time only)...`,
  );
  // Unpack into a scratch dir and rename at the end, so an interrupted install never looks complete.
  const staging = path.join(home, 'app.tmp');
  const scratch = path.join(home, 'mvn.tmp');
  fs.rmSync(staging, { recursive: true, force: true });
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.mkdirSync(scratch, { recursive: true });
  try {
    // Run without a project: the plugin then writes its unpack markers under the working directory.
    // Maven -q says nothing while it downloads, so progress is the size of the zip in its local repository.
    const inRepo = path.join(mavenLocalRepo(), 'io', 'apicurio', 'apicurio-registry-app', APICURIO_VERSION);
    await runWatched(
      'mvn',
      ['-q', '-B', `${DEPENDENCY_PLUGIN}:unpack`, `-Dartifact=${ARTIFACT}`, `-DoutputDirectory=${staging}`],
      { cwd: scratch },
      {
        progress: ctx.progress,
        report: downloadReport('Apicurio Registry', ZIP_BYTES, () => bytesOf(inRepo, ZIP)),
      },
    );
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  if (!fs.existsSync(path.join(staging, RUNNER_JAR))) {
    throw new KeyflowError(
      'SERVICE_INSTALL_FAILED',
      `Maven unpacked ${ARTIFACT} but ${RUNNER_JAR} is not in it`,
      {
        retriable: false,
        details: { staging },
      },
    );
  }
  fs.rmSync(appDir(ctx), { recursive: true, force: true });
  fs.renameSync(staging, appDir(ctx));
  fs.writeFileSync(path.join(home, MARKER), `${ARTIFACT}\n`);
  ctx.progress(`Apicurio Registry ${APICURIO_VERSION} ready in ${appDir(ctx)}`);
}

async function start(ctx: StackContext): Promise<number> {
  if (!fs.existsSync(path.join(homeDir(ctx), MARKER))) {
    throw new KeyflowError(
      'SERVICE_NOT_INSTALLED',
      `Apicurio Registry ${APICURIO_VERSION} is not installed under ${homeDir(ctx)}; run install first`,
      { retriable: false },
    );
  }
  fs.mkdirSync(dataDir(ctx), { recursive: true });
  const env: NodeJS.ProcessEnv = {
    QUARKUS_HTTP_HOST: '127.0.0.1',
    HTTP_PORT: String(ctx.ports.registry),
    // The app's SQL storage on an H2 *file* (its default is H2 in memory): schemas and ids survive restarts.
    REGISTRY_DATASOURCE_URL: `jdbc:h2:file:${path.join(dataDir(ctx), 'registry')}`,
    // Look schemas up by their canonical form, as Confluent does: re-registering the same schema with
    // other whitespace or key order returns the existing id instead of adding a version.
    ENABLE_CCOMPAT_CANONICAL_HASH_MODE: 'true',
    // No global compatibility rule on purpose: Apicurio applies a global rule even where a subject is set
    // to NONE, unlike Confluent. Keyflow sets BACKWARD on each subject it registers (schemas/codec.ts).
  };
  const jvmArgs = ['-Xms64m', '-Xmx512m', '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true'];
  return spawnDetached(ctx, 'registry', javaBin(), [...jvmArgs, '-jar', path.join(appDir(ctx), RUNNER_JAR)], {
    cwd: dataDir(ctx),
    env,
  });
}

async function ready(ctx: StackContext): Promise<boolean> {
  try {
    const res = await fetch(`${baseUrl(ctx)}/subjects`, { signal: AbortSignal.timeout(2000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

function endpoint(ctx: StackContext): ServiceEndpoint {
  return { env: { SCHEMA_REGISTRY_URL: baseUrl(ctx) } };
}

export const registry: LocalService = {
  name: 'registry',
  install,
  start,
  ready,
  endpoint,
  label: () => `Apicurio Registry ${APICURIO_VERSION}`,
  dataDirs: (ctx) => [dataDir(ctx)],
};
