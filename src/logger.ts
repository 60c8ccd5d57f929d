// The process logger: pino JSON lines; secrets are redacted by path so a stray config dump stays safe.
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
];

export function createLogger(level: string = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    { level, base: { app: 'keyflow' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    destination,
  );
}
