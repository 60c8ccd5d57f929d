// The appointments topics' values: the upstream contract (external.appointments.v1) and the change
// records this dataflow emits (changes.appointments.v1), each as an Avro schema paired with zod.
import { z } from 'zod';
import type { ValueSchema } from '../topology/types';

export const APPOINTMENT_KINDS = ['SCHEDULED', 'RESCHEDULED', 'CANCELLED', 'COMPLETED', 'NO_SHOW'] as const;
export type AppointmentKind = (typeof APPOINTMENT_KINDS)[number];

const NAMESPACE = 'keyflow.appointments.v1';
const timestamp = { type: 'long', logicalType: 'timestamp-millis' };
const epochMs = z.number().int();

export const appointmentEventZod = z.object({
  eventId: z.string().min(1),
  tenantId: z.string().min(1),
  appointmentId: z.string().min(1),
  leadId: z.string(),
  kind: z.enum(APPOINTMENT_KINDS),
  scheduledFor: epochMs.nullable(),
  occurredAt: epochMs,
  source: z.string(),
});
export type AppointmentEvent = z.infer<typeof appointmentEventZod>;

/** The upstream contract, exactly; later versions may only add fields that have defaults. */
export const appointmentEventValue: ValueSchema<AppointmentEvent> = {
  avro: {
    type: 'record',
    name: 'AppointmentEvent',
    namespace: NAMESPACE,
    fields: [
      { name: 'eventId', type: 'string' },
      { name: 'tenantId', type: 'string' },
      { name: 'appointmentId', type: 'string' },
      { name: 'leadId', type: 'string' },
      { name: 'kind', type: { type: 'enum', name: 'AppointmentKind', symbols: [...APPOINTMENT_KINDS] } },
      { name: 'scheduledFor', type: ['null', timestamp], default: null },
      { name: 'occurredAt', type: timestamp },
      { name: 'source', type: 'string' },
    ],
  },
  zod: appointmentEventZod,
};

const snapshotZod = z.object({ status: z.enum(APPOINTMENT_KINDS), scheduledFor: epochMs.nullable() });
export type AppointmentSnapshot = z.infer<typeof snapshotZod>;

export const appointmentChangeZod = z.object({
  appointmentId: z.string(),
  tenantId: z.string(),
  eventId: z.string(),
  occurredAt: epochMs,
  outOfOrder: z.boolean(),
  before: snapshotZod.nullable(),
  after: snapshotZod,
});
export type AppointmentChange = z.infer<typeof appointmentChangeZod>;

// Plain Avro only (records, enums, a null union, timestamp-millis longs), so a stock consumer with
// nothing but the registry's writer schema decodes it.
export const appointmentChangeValue: ValueSchema<AppointmentChange> = {
  avro: {
    type: 'record',
    name: 'AppointmentChange',
    namespace: NAMESPACE,
    fields: [
      { name: 'appointmentId', type: 'string' },
      { name: 'tenantId', type: 'string' },
      { name: 'eventId', type: 'string', doc: 'The id of the upstream event that caused this change.' },
      { name: 'occurredAt', type: timestamp },
      { name: 'outOfOrder', type: 'boolean' },
      {
        name: 'before',
        default: null,
        type: [
          'null',
          {
            type: 'record',
            name: 'AppointmentSnapshot',
            fields: [
              {
                name: 'status',
                type: { type: 'enum', name: 'AppointmentStatus', symbols: [...APPOINTMENT_KINDS] },
              },
              { name: 'scheduledFor', type: ['null', timestamp], default: null },
            ],
          },
        ],
      },
      { name: 'after', type: 'AppointmentSnapshot' },
    ],
  },
  zod: appointmentChangeZod,
};
