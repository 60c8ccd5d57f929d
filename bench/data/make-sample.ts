// Writes bench/data/recorded-sample.jsonl: the format a recording of upstream traffic takes, so the
// `recorded` scenario and its loader have a file to read. We hold no production traffic, so the
// sample is made here: the demo generator's traffic with every id replaced by a keyed hash (nothing in
// it can be traced back), sources varied, and lines in arrival order. Run: npx tsx bench/data/make-sample.ts
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { generate } from '../../src/app/demo/generate';

const anon = (kind: string, id: string) =>
  `${kind}-${createHash('sha256').update(`sample:${id}`).digest('hex').slice(0, 10)}`;
const SOURCES = ['crm-webhook', 'calendar-sync', 'call-center'];

const events = generate({
  seed: 4242,
  runId: 'rec',
  tenants: 2,
  appointments: 80,
  leads: 50,
  conversionsPerLead: 3,
  lateShare: 0.1,
  duplicateShare: 0.05,
  start: Date.UTC(2026, 8, 1),
});
const lines = events.map((e, i) => {
  if (e.topic === 'appointments') {
    const v = e.value;
    return {
      topic: e.topic,
      value: {
        ...v,
        eventId: anon('evt', v.eventId),
        tenantId: anon('tnt', v.tenantId),
        appointmentId: anon('apt', v.appointmentId),
        leadId: anon('led', v.leadId),
        source: SOURCES[i % SOURCES.length]!,
      },
    };
  }
  const v = e.value;
  return {
    topic: e.topic,
    value: {
      ...v,
      eventId: anon('evt', v.eventId),
      tenantId: anon('tnt', v.tenantId),
      leadId: anon('led', v.leadId),
    },
  };
});
const out = path.join(__dirname, 'recorded-sample.jsonl');
fs.writeFileSync(out, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
process.stdout.write(`wrote ${lines.length} events to ${out}\n`);
