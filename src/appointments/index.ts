// The appointments dataflow: upstream appointment events folded into RSAppointment and its temporal
// table RSAppointmentChanges, each applied change emitted on changes.appointments.v1.
import type { Dataflow } from '../runtime/dataflow';
import { topic } from '../topology/define';
import { appointmentChangesReplay, appointmentReplay } from './replay';
import { appointmentRoutes } from './routes';
import { appointmentChangeValue, appointmentEventValue } from './schemas';
import { appointmentsStage } from './stage';
import { APPOINTMENT_INDEXES, APPOINTMENT_QUERIES } from './tables';

export const APPOINTMENTS_INPUT = 'external.appointments.v1';
export const APPOINTMENTS_OUTPUT = 'changes.appointments.v1';
export const APPOINTMENTS_STAGE = 'appointments';
const PARTITIONS = 6;

export interface AppointmentsFlowOptions {
  /** Prefixes the topic and stage names (`<prefix>.<name>`), so a test runs in isolation. */
  prefix?: string;
}

export function appointmentsFlow(opts: AppointmentsFlowOptions = {}): Dataflow {
  // The stage is renamed too: its name is the consumer group, which must not be shared across prefixes.
  const named = (name: string) => (opts.prefix ? `${opts.prefix}.${name}` : name);
  const input = named(APPOINTMENTS_INPUT);
  const output = named(APPOINTMENTS_OUTPUT);
  return {
    name: 'appointments',
    topics: [
      topic(input, { partitions: PARTITIONS, key: 'appointmentId', value: appointmentEventValue }),
      topic(output, { partitions: PARTITIONS, key: 'appointmentId', value: appointmentChangeValue }),
    ],
    stages: [appointmentsStage({ stage: named(APPOINTMENTS_STAGE), input, output })],
    indexes: APPOINTMENT_INDEXES,
    queries: APPOINTMENT_QUERIES,
    replay: [appointmentReplay, appointmentChangesReplay],
    adminRoutes: (ctx) => appointmentRoutes(ctx.db),
  };
}

export { fold, reduce, compareVersions } from './reducer';
export type { AppointmentState, EventVersion, Reduction } from './reducer';
export type { AppointmentChange, AppointmentEvent, AppointmentKind } from './schemas';
export type { AppointmentDoc, ChangeRow } from './tables';
