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
  // The ids both topics carry; the field order stays the value's own.
  const ids = { eventId: anon('evt', e.value.eventId), tenantId: anon('tnt', e.value.tenantId) };
  const leadId = anon('led', e.value.leadId);
  if (e.topic === 'appointments') {
    const appointmentId = anon('apt', e.value.appointmentId);
    const source = SOURCES[i % SOURCES.length]!;
    return { topic: e.topic, value: { ...e.value, ...ids, appointmentId, leadId, source } };
  }
  return { topic: e.topic, value: { ...e.value, ...ids, leadId } };
});
const out = path.join(__dirname, 'recorded-sample.jsonl');
fs.writeFileSync(out, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
process.stdout.write(`wrote ${lines.length} events to ${out}\n`);
