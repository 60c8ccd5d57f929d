// The process logger: pino JSON lines; secrets are redacted by path so a stray config dump stays safe.
// Where the lines go is one decision, `chooseLogDestination`, so every command answers it the same way.
import path from 'node:path';
import pino, { type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'mongoUrl',
  'schemaRegistryAuth',
  '*.mongoUrl',
  '*.schemaRegistryAuth',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'apiKey',
  '*.apiKey',
  'adminToken',
  '*.adminToken',
  'adminTokenHash',
  '*.adminTokenHash',
  'token',
  '*.token',
];

export function createLogger(level: string = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    { level, base: { app: 'keyflow' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    destination,
  );
}

export type LogDestination = { to: 'stdout' } | { to: 'stderr' } | { to: 'file'; path: string };

export interface DestinationInputs {
  /** KEYFLOW_LOG_FILE: when set, the log goes there whatever else is said. */
  logFile?: string;
  /** LOG_LEVEL is set in the environment: whoever set it wants to watch the log, not look it up later. */
  levelSet: boolean;
  /** Where this command keeps its log when neither says otherwise. */
  fallback: LogDestination;
}

/**
 * KEYFLOW_LOG_FILE wins; otherwise a command whose log would go to a file (the demo) sends it to stderr
 * once LOG_LEVEL is set explicitly; otherwise the command's own fallback (standard output for servers).
 */
export function chooseLogDestination(inputs: DestinationInputs): LogDestination {
  if (inputs.logFile) return { to: 'file', path: path.resolve(inputs.logFile) };
  if (inputs.levelSet && inputs.fallback.to === 'file') return { to: 'stderr' };
  if (inputs.fallback.to === 'file') return { to: 'file', path: path.resolve(inputs.fallback.path) };
  return inputs.fallback;
}

export function openDestination(d: LogDestination): pino.DestinationStream {
  if (d.to === 'stdout') return pino.destination(1);
  if (d.to === 'stderr') return pino.destination(2);
  // Asynchronous appends: a burst of log lines must not stall the stages; the folder is created if needed.
  return pino.destination({ dest: d.path, append: true, mkdir: true, sync: false });
}

export interface CommandLogOptions {
  /** The level when LOG_LEVEL is not set. */
  level: string;
  /** Where the lines go when KEYFLOW_LOG_FILE is not set. */
  fallback: LogDestination;
}

/** A command's logger: the level and destination from the settings, the command's own defaults otherwise. */
export function commandLogger(
  env: NodeJS.ProcessEnv,
  settings: { logLevel: string; logFile?: string },
  opts: CommandLogOptions,
): { log: Logger; destination: LogDestination } {
  const levelSet = env.LOG_LEVEL !== undefined && env.LOG_LEVEL !== '';
  const destination = chooseLogDestination({ logFile: settings.logFile, levelSet, fallback: opts.fallback });
  const log = createLogger(levelSet ? settings.logLevel : opts.level, openDestination(destination));
  return { log, destination };
}
