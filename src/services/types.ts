// The contract every locally started service (Kafka, schema registry, Mongo-protocol server) fulfils,
// so `keyflow services up|down|status` can drive them alike.
import type { ProxiedListener } from './kafka-config';

export interface StackPorts {
  kafka: number;
  kafkaController: number;
  registry: number;
  mongo: number;
}

export type MongoServerKind = 'ferretdb' | 'mongo-java-server' | 'secantusdb';

export interface StackContext {
  /** Absolute path of the project-local state folder (`.keyflow/`): data, logs, pids, venv. */
  stateDir: string;
  /** Absolute path of the machine-wide download cache (survives fresh clones): jars, builds. */
  cacheDir: string;
  ports: StackPorts;
  /** The Kafka release to install and run: a 4.x (the default) or a 3.9.x. */
  kafkaVersion: string;
  mongoServer: MongoServerKind;
  /**
   * Set only by the fault suite: the broker also listens on a port advertised as a fault proxy's, so a
   * processor bootstrapped through the proxy can be cut off from Kafka (kafka-config.ts, ProxiedListener).
   */
  kafkaProxied?: ProxiedListener;
  /** Progress lines for the person waiting ("resolving Kafka jars from Maven Central..."). */
  progress: (line: string) => void;
}

/** What a service hands back once it answers. */
export interface ServiceEndpoint {
  /** Settings to write to `.keyflow/services.env`, e.g. { KAFKA_BROKERS: '127.0.0.1:9092' }. */
  env: Record<string, string>;
}

export interface LocalService {
  readonly name: 'kafka' | 'registry' | 'mongo';
  /** Downloads or builds what the service needs; cached under ctx.cacheDir, a no-op the second time. */
  install(ctx: StackContext): Promise<void>;
  /**
   * Starts the service as a detached process (logs to `<stateDir>/logs/<name>.log`) and returns its pid.
   * Must not wait for readiness; `ready` is polled afterwards.
   */
  start(ctx: StackContext): Promise<number>;
  /** True once the service really answers (Kafka metadata, registry GET /subjects, Mongo ping). */
  ready(ctx: StackContext): Promise<boolean>;
  endpoint(ctx: StackContext): ServiceEndpoint;
  /** What runs, for `services status`: "Kafka 4.4.0", "mongo-java-server 1.47.0". */
  label(ctx: StackContext): string;
  /** The folders under ctx.stateDir holding the service's data (what `status` sizes and `reset` deletes). */
  dataDirs(ctx: StackContext): string[];
  /** Refuses, before anything of the stack starts, what would make `start` fail (old Java, foreign data). */
  preflight?(ctx: StackContext): Promise<void>;
}
