// The event set of a benchmark scenario, built once and offered identically to every contestant:
// synthetic (the demo generator with key skew) or recorded (a JSONL file), plus injected poison
// records and the events chosen to fail transiently. Also the ground truth: what the tables must
// hold after applying the distinct events, computed with the same pure reducers the stages use.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { generate, type Published } from '../app/demo/generate';
import { fold, type AppointmentState } from '../appointments/reducer';
import { appointmentEventZod, type AppointmentEvent } from '../appointments/schemas';
import { reduceConversions, type ConversionRow } from '../conversions/reducer';
import { conversionEvent, type ConversionEvent } from '../conversions/schemas';
import { KeyflowError } from '../errors';
import type { Scenario } from './scenario';

export type Flow = 'appointments' | 'conversions';

export type BenchEvent =
  | { flow: 'appointments'; key: string; value: AppointmentEvent; late: boolean; duplicate: boolean }
  | { flow: 'conversions'; key: string; value: ConversionEvent; late: boolean; duplicate: boolean }
  /** Bytes no decoder accepts, under a key of their own so they hold up no real entity. */
  | { flow: Flow; key: string; value: null; poison: Buffer; late: false; duplicate: false };

export interface EventSet {
  events: BenchEvent[];
  /** Event ids whose first `transientAttempts` write attempts fail. */
  failing: Set<string>;
  transientAttempts: number;
  source: string;
  truth: Truth;
}

export interface Truth {
  appointments: Map<string, AppointmentState>;
  /** Distinct appointment events: one change row each. */
  changeRows: number;
  conversions: Map<string, ConversionRow>;
  /** Distinct late appointment events (those the stage flags out of order when order is kept). */
  lateAppointments: number;
  entities: number;
  poison: number;
}

const DAY = 86_400_000;

/** Events per lead under a Zipf law of exponent `skew` (0: all equal), summing to leads × mean. */
export function zipfCounts(leads: number, mean: number, skew: number): number[] {
  if (leads === 0) return [];
  const total = leads * mean;
  const weights = Array.from({ length: leads }, (_, i) => 1 / Math.pow(i + 1, skew));
  const sum = weights.reduce((a, b) => a + b, 0);
  const counts = weights.map((w) => Math.floor((total * w) / sum));
  // Hand out what flooring left over, one each from the hottest down, so the total is exact.
  let left = total - counts.reduce((a, b) => a + b, 0);
  for (let i = 0; left > 0; i = (i + 1) % leads, left--) counts[i]!++;
  return counts;
}

/** Deterministic membership by event id: the same events fail in every contestant. */
export function chosen(id: string, share: number, salt: string): boolean {
  if (share <= 0) return false;
  const h = createHash('sha1').update(`${salt}:${id}`).digest();
  return h.readUInt32BE(0) / 0x1_0000_0000 < share;
}

const recordedLine = z.discriminatedUnion('topic', [
  z.strictObject({ topic: z.literal('appointments'), value: appointmentEventZod }),
  z.strictObject({ topic: z.literal('conversions'), value: conversionEvent }),
]);
export type RecordedLine = z.infer<typeof recordedLine>;

/**
 * Reads a recorded JSONL file: one `{"topic": "appointments"|"conversions", "value": {...}}` per line,
 * in the order it was received. A bad line is refused with its number and the problem.
 */
export function parseRecorded(text: string, file: string): RecordedLine[] {
  const out: RecordedLine[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      throw new KeyflowError('USAGE', `${file}:${i + 1}: not JSON: ${(err as Error).message}`);
    }
    const parsed = recordedLine.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new KeyflowError(
        'USAGE',
        `${file}:${i + 1}: ${issue.path.join('.') || '(line)'}: ${issue.message}`,
      );
    }
    out.push(parsed.data);
  });
  if (out.length === 0) throw new KeyflowError('USAGE', `${file}: no events`);
  return out;
}

/**
 * The recorded events as published: ids prefixed per run and copy (so runs never collide), late and
 * duplicate worked out from the order itself rather than trusted from the file.
 */
export function fromRecorded(lines: RecordedLine[], runId: string, repeat: number): BenchEvent[] {
  const out: BenchEvent[] = [];
  for (let copy = 0; copy < repeat; copy++) {
    const id = (s: string) => `${runId}-${copy}-${s}`;
    const seen = new Set<string>();
    const latest = new Map<string, number>();
    for (const line of lines) {
      const v = line.value;
      const entity = line.topic === 'appointments' ? (v as AppointmentEvent).appointmentId : v.leadId;
      const duplicate = seen.has(`${line.topic}:${v.eventId}`);
      seen.add(`${line.topic}:${v.eventId}`);
      // Per topic: an appointment and a lead may share an id in a recording without being one entity.
      const slot = `${line.topic}:${entity}`;
      const late = !duplicate && (latest.get(slot) ?? -Infinity) > v.occurredAt;
      latest.set(slot, Math.max(latest.get(slot) ?? -Infinity, v.occurredAt));
      if (line.topic === 'appointments') {
        const value = {
          ...line.value,
          eventId: id(v.eventId),
          tenantId: id(v.tenantId),
          appointmentId: id(line.value.appointmentId),
          leadId: id(v.leadId),
        };
        out.push({ flow: 'appointments', key: value.appointmentId, value, late, duplicate });
      } else {
        const value = {
          ...line.value,
          eventId: id(v.eventId),
          tenantId: id(v.tenantId),
          leadId: id(v.leadId),
        };
        out.push({ flow: 'conversions', key: value.leadId, value, late, duplicate });
      }
    }
  }
  return out;
}

function fromPublished(p: Published): BenchEvent {
  return p.topic === 'appointments'
    ? { flow: 'appointments', key: p.key, value: p.value, late: p.late, duplicate: p.duplicate }
    : { flow: 'conversions', key: p.key, value: p.value, late: p.late, duplicate: p.duplicate };
}

/** Spreads `count` poison records evenly through the stream, alternating between the two inputs. */
export function withPoison(events: BenchEvent[], count: number, runId: string): BenchEvent[] {
  if (count === 0) return events;
  const out = [...events];
  const every = Math.max(1, Math.floor(out.length / count));
  for (let i = count - 1; i >= 0; i--) {
    const poison = Buffer.from(`not an event: injected poison ${i}`);
    const flow: Flow = i % 2 === 0 ? 'appointments' : 'conversions';
    out.splice(Math.min(out.length, (i + 1) * every), 0, {
      flow,
      key: `${runId}-poison-${i}`,
      value: null,
      poison,
      late: false,
      duplicate: false,
    });
  }
  return out;
}

export function groundTruth(events: readonly BenchEvent[]): Truth {
  const byAppointment = new Map<string, AppointmentEvent[]>();
  const conversions: ConversionEvent[] = [];
  const appointmentIds = new Set<string>();
  let lateAppointments = 0;
  let poison = 0;
  for (const e of events) {
    if (e.value === null) {
      poison++;
      continue;
    }
    if (e.flow === 'appointments') {
      if (appointmentIds.has(e.value.eventId)) continue;
      appointmentIds.add(e.value.eventId);
      if (e.late) lateAppointments++;
      const list = byAppointment.get(e.key) ?? [];
      list.push(e.value);
      byAppointment.set(e.key, list);
    } else {
      conversions.push(e.value);
    }
  }
  const appointments = new Map<string, AppointmentState>();
  for (const [id, list] of byAppointment) appointments.set(id, fold(list)!);
  const rows = new Map(
    reduceConversions(conversions).map((r) => [JSON.stringify([r.tenantId, r.leadId, r.conversionType]), r]),
  );
  const leads = new Set(conversions.map((c) => c.leadId));
  return {
    appointments,
    changeRows: appointmentIds.size,
    conversions: rows,
    lateAppointments,
    entities: appointments.size + leads.size,
    poison,
  };
}

export function buildEventSet(s: Scenario & { file: string }, runId: string, now = Date.now()): EventSet {
  let events: BenchEvent[];
  let source: string;
  if (s.source.kind === 'synthetic') {
    const src = s.source;
    events = generate({
      seed: src.seed,
      runId,
      tenants: s.tenants.count,
      appointments: src.appointments,
      leads: src.leads,
      conversionsPerLead: src.conversionsPerLead,
      conversionCounts: s.keySkew > 0 ? zipfCounts(src.leads, src.conversionsPerLead, s.keySkew) : undefined,
      lateShare: s.lateShare,
      duplicateShare: s.duplicateShare,
      start: now - 30 * DAY,
    }).map(fromPublished);
    source = `synthetic (seed ${src.seed})`;
  } else {
    const file = path.resolve(path.dirname(s.file), s.source.file);
    if (!fs.existsSync(file)) throw new KeyflowError('USAGE', `${s.file}: recorded file ${file} not found`);
    events = fromRecorded(parseRecorded(fs.readFileSync(file, 'utf8'), file), runId, s.source.repeat);
    source = `recorded ${path.relative(process.cwd(), file)} ×${s.source.repeat}`;
  }
  const real = events.length;
  events = withPoison(events, Math.round(real * s.failures.poisonShare), runId);
  const failing = new Set<string>();
  for (const e of events) {
    if (e.value !== null && chosen(e.value.eventId, s.failures.transientShare, runId))
      failing.add(e.value.eventId);
  }
  return {
    events,
    failing,
    transientAttempts: s.failures.transientAttempts,
    source,
    truth: groundTruth(events),
  };
}
