// One event is one trace, seen by a real OpenTelemetry Collector: an upstream send span, the appointments
// stage's process span (with read, decide and write under it) and the send span of the change record it
// emits, then a second stage's process span reading that change record — one trace id, each span's
// parent the span before it, and the change record's traceparent naming its send span.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import type { AppointmentEvent } from '../../src/appointments';
import {
  formatTraceparent,
  HEADERS,
  newTraceId,
  parseTraceparent,
  recordSpanId,
} from '../../src/producers/headers';
import { cleanupAll, env, eventually, freePort, kafkaClient, onCleanup, uniqueName } from '../helpers';
import { tracedAppointments } from './fixtures/traced-appointments';
import { prefix, spawnInstance, testConfig, testProducer } from './harness';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { otelcolBinary } = require('../../scripts/otelcol') as { otelcolBinary(): string };

afterAll(cleanupAll);

const FIXTURE = path.join(__dirname, 'fixtures', 'run-traced-appointments.ts');

async function dropDb(name: string): Promise<void> {
  const client = await MongoClient.connect(env('MONGO_URL'));
  await client.db(name).dropDatabase();
  await client.close();
}

interface SeenSpan {
  traceId: string;
  parentId: string;
  id: string;
  name: string;
  kind: string;
  attributes: Record<string, string>;
}

/** The spans the debug exporter printed (verbosity detailed), in the order they arrived. */
function parseSpans(log: string): SeenSpan[] {
  return log
    .split(/^Span #\d+$/m)
    .slice(1)
    .map((block) => {
      const field = (name: string) =>
        new RegExp(`^ {4}${name} +: ?(.*)$`, 'm').exec(block)?.[1]?.trim() ?? '';
      const attributes: Record<string, string> = {};
      const attrs = block.split(/^Attributes:$/m)[1] ?? '';
      for (const m of attrs.matchAll(/^ {5}-> ([\w.]+): \w+\((.*)\)$/gm)) attributes[m[1]!] = m[2]!;
      return {
        traceId: field('Trace ID'),
        parentId: field('Parent ID'),
        id: field('ID'),
        name: field('Name'),
        kind: field('Kind'),
        attributes,
      };
    });
}

/** The collector on a free localhost port, printing every span it receives; stopped after the file. */
async function startCollector(): Promise<{ endpoint: string; spans: () => SeenSpan[] }> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otelcol-'));
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    [
      'receivers:',
      '  otlp:',
      '    protocols:',
      '      http:',
      `        endpoint: 127.0.0.1:${port}`,
      'exporters:',
      '  debug:',
      '    verbosity: detailed',
      'service:',
      '  telemetry:',
      '    metrics:',
      '      level: none',
      '  pipelines:',
      '    traces:',
      '      receivers: [otlp]',
      '      exporters: [debug]',
      '',
    ].join('\n'),
  );
  const child = spawn(otelcolBinary(), ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  onCleanup(async () => {
    child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await eventually(
    async () => (log.includes('Everything is ready') ? true : undefined),
    30_000,
    'the collector',
  );
  return { endpoint: `http://127.0.0.1:${port}`, spans: () => parseSpans(log) };
}

/**
 * The upstream service's send span, posted as OTLP/JSON (an SDK's exporter cannot run inside jest, see
 * fixtures/run-traced-appointments.ts): the root of the trace.
 */
async function postUpstreamSpan(endpoint: string, traceId: string, spanId: string, name: string) {
  const now = BigInt(Date.now()) * 1_000_000n;
  const res = await fetch(`${endpoint}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'upstream' } }] },
          scopeSpans: [
            {
              scope: { name: 'upstream' },
              spans: [
                {
                  traceId,
                  spanId,
                  name,
                  kind: 4, // PRODUCER
                  startTimeUnixNano: String(now - 1_000_000n),
                  endTimeUnixNano: String(now),
                },
              ],
            },
          ],
        },
      ],
    }),
  });
  expect(res.status).toBe(200);
}

/** The collector, and the topology running in an instance of its own that exports to it. */
async function traced(name: string) {
  const collector = await startCollector();
  const p = prefix(name);
  const topology = tracedAppointments(p);
  const config = testConfig();
  const producer = await testProducer(config, topology);
  await spawnInstance(FIXTURE, {
    SCN_PREFIX: p,
    MONGO_DB: config.mongoDb,
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
    OTEL_SERVICE_NAME: 'keyflow-trace-test',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  onCleanup(() => dropDb(config.mongoDb));
  return { collector, p, topology, producer };
}

/** The headers of the first record on `topic` whose key is `key`. */
async function headersOf(topic: string, key: string): Promise<Record<string, string>> {
  const consumer = kafkaClient().consumer({ groupId: uniqueName('traces-read') });
  await consumer.connect();
  onCleanup(() => consumer.disconnect());
  await consumer.subscribe({ topic, fromBeginning: true });
  let found: Record<string, string> | undefined;
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (found || message.key?.toString() !== key) return;
      found = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
    },
  });
  return eventually(async () => found, 30_000, `a record with key ${key} on ${topic}`);
}

test('one event through two stages is one trace in the collector, parent by parent', async () => {
  const { collector, p, topology, producer } = await traced('traces');

  // The upstream service publishes with a traceparent of its own send span, and reports that span.
  const event: AppointmentEvent = {
    eventId: uniqueName('appt-event'),
    tenantId: 'acme',
    appointmentId: uniqueName('appt'),
    leadId: 'lead-1',
    kind: 'SCHEDULED',
    scheduledFor: Date.UTC(2026, 11, 24),
    occurredAt: Date.UTC(2026, 11, 1),
    source: 'crm',
  };
  const input = `${p}.external.appointments.v1`;
  const changes = `${p}.changes.appointments.v1`;
  const traceId = newTraceId();
  // What Keyflow's own producer names (recordSpanId) until the runner hands the tracer the header itself.
  const spanId = recordSpanId(event.eventId);
  await postUpstreamSpan(collector.endpoint, traceId, spanId, `send ${input}`);
  await producer.publish([
    {
      topic: input,
      key: event.appointmentId,
      value: event,
      eventId: event.eventId,
      headers: { [HEADERS.TRACEPARENT]: formatTraceparent(traceId, spanId) },
    },
  ]);

  const { stage, audit } = topology;
  const spans = await eventually(
    async () => {
      const inTrace = collector.spans().filter((s) => s.traceId === traceId);
      return inTrace.some((s) => s.attributes['messaging.consumer.group.name'] === audit)
        ? inTrace
        : undefined;
    },
    60_000,
    'the second stage’s process span',
  );
  const one = (pred: (s: SeenSpan) => boolean, what: string): SeenSpan => {
    const found = spans.filter(pred);
    if (found.length !== 1)
      throw new Error(`expected one ${what}, got ${found.length}: ${JSON.stringify(spans)}`);
    return found[0]!;
  };
  const processA = one((s) => s.name === `process ${input}`, 'process span of the first stage');
  expect(processA).toMatchObject({
    parentId: spanId,
    kind: 'Consumer',
    attributes: {
      'messaging.system': 'kafka',
      'messaging.operation.type': 'process',
      'messaging.destination.name': input,
      'messaging.consumer.group.name': stage,
      'messaging.kafka.message.key': event.appointmentId,
      'messaging.message.id': event.eventId,
    },
  });
  expect(processA.attributes['messaging.kafka.offset']).toMatch(/^\d+$/);
  for (const step of ['read', 'decide', 'write']) {
    expect(one((s) => s.name === `${step} ${stage}`, `${step} span`).parentId).toBe(processA.id);
  }
  const sendA = one((s) => s.name === 'send' && s.parentId === processA.id, 'send span of the change record');
  expect(sendA).toMatchObject({ kind: 'Producer', attributes: { 'messaging.operation.type': 'send' } });

  // The change record on the topic names that send span as its parent.
  const { traceparent } = await headersOf(changes, event.appointmentId);
  expect(parseTraceparent(traceparent)).toEqual({ traceId, spanId: sendA.id });

  const processB = one((s) => s.name === `process ${changes}`, 'process span of the second stage');
  expect(processB).toMatchObject({
    parentId: sendA.id,
    kind: 'Consumer',
    attributes: { 'messaging.consumer.group.name': audit, 'messaging.destination.name': changes },
  });
  const root = one((s) => s.name === `send ${input}`, 'upstream send span');
  expect(root).toMatchObject({ id: spanId, parentId: '' });
  expect(spans.every((s) => s.traceId === traceId)).toBe(true);
});

test('a record that cannot be decoded is dead-lettered with its traceparent, and its span is an error', async () => {
  const { collector, p } = await traced('traces-dlq');
  const input = `${p}.external.appointments.v1`;
  const key = uniqueName('appt');
  const traceparent = formatTraceparent(newTraceId(), recordSpanId(uniqueName('upstream')));
  const producer = kafkaClient().producer();
  await producer.connect();
  onCleanup(() => producer.disconnect());
  await producer.send({
    topic: input,
    messages: [{ key, value: Buffer.from('not avro'), headers: { [HEADERS.TRACEPARENT]: traceparent } }],
  });

  const letter = await headersOf(`${p}.appointments.dlq`, key);
  expect(letter[HEADERS.DLQ_CODE]).toBe('DECODE_FAILED');
  expect(letter[HEADERS.TRACEPARENT]).toBe(traceparent);
  const span = await eventually(
    async () =>
      collector
        .spans()
        .find((s) => s.name === `process ${input}` && s.attributes['messaging.kafka.message.key'] === key),
    60_000,
    'the dead-lettered event’s span',
  );
  expect(span.attributes).toMatchObject({
    'error.type': 'DECODE_FAILED',
    'keyflow.outcome': 'dead-lettered',
  });
});
