// Sample upstream traffic for the demo and the benchmark: appointment lifecycles and lead
// conversions, with a share of events deliberately published late (older occurredAt than what the
// entity already saw) and a share re-sent with the same event id, as real upstream systems do.
// Deterministic for a seed, so a run can be reproduced.

export type AppointmentKind = 'SCHEDULED' | 'RESCHEDULED' | 'CANCELLED' | 'COMPLETED' | 'NO_SHOW';

export interface AppointmentEvent {
  eventId: string;
  tenantId: string;
  appointmentId: string;
  leadId: string;
  kind: AppointmentKind;
  scheduledFor: number | null;
  occurredAt: number;
  source: string;
}

export interface ConversionEvent {
  eventId: string;
  tenantId: string;
  leadId: string;
  conversionType: string;
  occurredAt: number;
  amount: number | null;
}

export type Published =
  | { topic: 'appointments'; key: string; value: AppointmentEvent; late: boolean; duplicate: boolean }
  | { topic: 'conversions'; key: string; value: ConversionEvent; late: boolean; duplicate: boolean };

export interface GenerateOptions {
  seed: number;
  /** Prefix of every id, so runs do not collide. */
  runId: string;
  tenants: number;
  appointments: number;
  leads: number;
  conversionsPerLead: number;
  /** Conversions of each lead, overriding conversionsPerLead (the benchmark's key skew). */
  conversionCounts?: readonly number[];
  /** Share of events published after a later event of the same entity (0..1). */
  lateShare: number;
  /** Share of events published a second time with the same event id (0..1). */
  duplicateShare: number;
  /** Epoch ms the simulated history starts at. */
  start: number;
}

/** Mulberry32: a small, fast, well-distributed PRNG; enough for reproducible sample data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LIFECYCLES: AppointmentKind[][] = [
  ['SCHEDULED', 'COMPLETED'],
  ['SCHEDULED', 'RESCHEDULED', 'COMPLETED'],
  ['SCHEDULED', 'CANCELLED'],
  ['SCHEDULED', 'RESCHEDULED', 'RESCHEDULED', 'NO_SHOW'],
  ['SCHEDULED', 'NO_SHOW'],
];
const CONVERSION_TYPES = ['contacted', 'appointment_set', 'sold'];
const HOUR = 3_600_000;

/**
 * Produces the events in publication order. Per entity the natural order is by occurredAt; a late
 * event swaps places with the entity's next event, so it arrives after something newer. Duplicates are
 * re-sent later in the stream (at another offset), never adjacent.
 */
export function generate(o: GenerateOptions): Published[] {
  const rand = prng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const tenant = (i: number) => `${o.runId}-tenant-${i % o.tenants}`;
  const perEntity: Published[][] = [];

  for (let a = 0; a < o.appointments; a++) {
    const appointmentId = `${o.runId}-appt-${a}`;
    const leadId = `${o.runId}-lead-${a % Math.max(1, o.leads)}`;
    let t = o.start + Math.floor(rand() * 30 * 24 * HOUR);
    let slot = t + 48 * HOUR;
    perEntity.push(
      pick(LIFECYCLES).map((kind, i) => {
        t += 1 + Math.floor(rand() * 6 * HOUR);
        if (kind === 'RESCHEDULED') slot += 24 * HOUR;
        const value: AppointmentEvent = {
          eventId: `${appointmentId}-e${i}`,
          tenantId: tenant(a),
          appointmentId,
          leadId,
          kind,
          scheduledFor: kind === 'SCHEDULED' || kind === 'RESCHEDULED' ? slot : null,
          occurredAt: t,
          source: 'demo',
        };
        return { topic: 'appointments', key: appointmentId, value, late: false, duplicate: false };
      }),
    );
  }
  for (let l = 0; l < o.leads; l++) {
    const leadId = `${o.runId}-lead-${l}`;
    let t = o.start + Math.floor(rand() * 30 * 24 * HOUR);
    const events: Published[] = [];
    const count = o.conversionCounts?.[l] ?? o.conversionsPerLead;
    for (let i = 0; i < count; i++) {
      t += 1 + Math.floor(rand() * 12 * HOUR);
      const type = pick(CONVERSION_TYPES);
      const value: ConversionEvent = {
        eventId: `${leadId}-c${i}`,
        tenantId: tenant(l),
        leadId,
        conversionType: type,
        occurredAt: t,
        amount: type === 'sold' ? Math.round(rand() * 500_00) / 100 : rand() < 0.5 ? null : 0,
      };
      events.push({ topic: 'conversions', key: leadId, value, late: false, duplicate: false });
    }
    perEntity.push(events);
  }

  // Late arrivals: swap an event with its entity's next one.
  for (const events of perEntity) {
    for (let i = 0; i + 1 < events.length; i++) {
      if (rand() < o.lateShare) {
        const later = events[i + 1]!;
        events[i + 1] = { ...events[i]!, late: true };
        events[i] = later;
        i++;
      }
    }
  }

  // Interleave entities round-robin (as independent upstream streams would), then add duplicates.
  const out: Published[] = [];
  for (let round = 0; out.length < perEntity.reduce((n, e) => n + e.length, 0); round++) {
    for (const events of perEntity) if (round < events.length) out.push(events[round]!);
  }
  const duplicates = out.filter(() => rand() < o.duplicateShare);
  for (const d of duplicates) {
    const at = Math.floor(rand() * out.length);
    out.splice(Math.max(at, out.indexOf(d) + 2), 0, { ...d, duplicate: true });
  }
  return out;
}
