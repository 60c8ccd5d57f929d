// The demo's closing lines: how long the stack took to take traffic, how fast events went through,
// and where the log is. Pure, so the wording is tested without a stack.
import { formatDuration } from '../../replay/report';

export interface DemoTimings {
  /** Where the services came from: the environment's settings, or the local stack (started or found). */
  services: 'environment' | 'local-started' | 'local-running';
  /** Until the three services answered (0 when the environment names them). */
  servicesMs: number;
  /** Until the processor had its topics, schemas and indexes and every stage had joined its group. */
  processorMs: number;
  events: number;
  /** From the first publish until every stage had committed the end of its input. */
  endToEndMs: number;
  /** The whole run, start-up included. */
  wallMs: number;
  /** The log file, or undefined when the log goes to a stream. */
  logFile?: string;
}

const SERVICES: Record<DemoTimings['services'], string> = {
  environment: 'the services named by KAFKA_BROKERS, SCHEMA_REGISTRY_URL and MONGO_URL',
  'local-started': 'local stack, started by this run',
  'local-running': 'local stack, already running',
};

/** Events per second, whole; a run too short to time reads as "-" rather than Infinity. */
export function eventsPerSecond(events: number, ms: number): string {
  return ms > 0 ? String(Math.round((events * 1000) / ms)) : '-';
}

export function summaryLines(t: DemoTimings): string[] {
  const rows: [string, string][] = [
    ['services ready', `${formatDuration(t.servicesMs)} (${SERVICES[t.services]})`],
    ['processor ready', `${formatDuration(t.processorMs)} (topics, schemas, indexes, every stage joined)`],
    [
      'end to end',
      `${t.events} events in ${formatDuration(t.endToEndMs)}, ${eventsPerSecond(t.events, t.endToEndMs)} events/s (first publish to last commit)`,
    ],
    ['wall time', formatDuration(t.wallMs)],
  ];
  if (t.logFile) rows.push(['log', t.logFile]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return ['Summary:', ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
}
