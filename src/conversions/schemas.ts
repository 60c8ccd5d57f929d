// The conversions dataflow's topics and their Avro + zod pairs: the upstream `external.conversions.v1`
// (its contract is fixed by the sender) and our change topic `changes.lead-conversions.v1`.
import { z } from 'zod';
import type { ValueSchema } from '../topology/types';

export const CONVERSIONS_TOPIC = 'external.conversions.v1';
export const CHANGES_TOPIC = 'changes.lead-conversions.v1';
export const STAGE_NAME = 'lead-conversions';

const NAMESPACE = 'keyflow.conversions';
const timestamp = { type: 'long', logicalType: 'timestamp-millis' };

/** One conversion as upstream sends it; key = leadId. Timestamps are epoch ms (see src/schemas/codec.ts). */
export const conversionEvent = z.object({
  eventId: z.string().min(1),
  tenantId: z.string().min(1),
  leadId: z.string().min(1),
  conversionType: z.string().min(1),
  occurredAt: z.number().int(),
  amount: z.number().nullable(),
});
export type ConversionEvent = z.infer<typeof conversionEvent>;

export const conversionEventSchema: ValueSchema<ConversionEvent> = {
  avro: {
    type: 'record',
    name: 'LeadConversion',
    namespace: NAMESPACE,
    fields: [
      { name: 'eventId', type: 'string' },
      { name: 'tenantId', type: 'string' },
      { name: 'leadId', type: 'string' },
      { name: 'conversionType', type: 'string' },
      { name: 'occurredAt', type: timestamp },
      { name: 'amount', type: ['null', 'double'], default: null },
    ],
  },
  zod: conversionEvent,
};

export const conversionTotals = z.object({
  count: z.number().int().min(1),
  amount: z.number(),
  firstAt: z.number().int(),
  lastAt: z.number().int(),
});
export type ConversionTotals = z.infer<typeof conversionTotals>;

/** One applied change of a (tenantId, leadId, conversionType) row; key = leadId. */
export const conversionChange = z.object({
  leadId: z.string(),
  tenantId: z.string(),
  conversionType: z.string(),
  eventId: z.string(),
  occurredAt: z.number().int(),
  outOfOrder: z.boolean(),
  before: conversionTotals.nullable(),
  after: conversionTotals,
});
export type ConversionChange = z.infer<typeof conversionChange>;

const TOTALS_NAME = `${NAMESPACE}.ConversionTotals`;

export const conversionChangeSchema: ValueSchema<ConversionChange> = {
  avro: {
    type: 'record',
    name: 'LeadConversionChange',
    namespace: NAMESPACE,
    fields: [
      { name: 'leadId', type: 'string' },
      { name: 'tenantId', type: 'string' },
      { name: 'conversionType', type: 'string' },
      { name: 'eventId', type: 'string', doc: 'The event id of the conversion that caused this change.' },
      { name: 'occurredAt', type: timestamp },
      { name: 'outOfOrder', type: 'boolean', doc: 'The conversion is older than the row’s lastAt.' },
      {
        name: 'before',
        doc: 'The row before the change; null when the change created it.',
        type: [
          'null',
          {
            type: 'record',
            name: TOTALS_NAME,
            fields: [
              { name: 'count', type: 'long' },
              { name: 'amount', type: 'double' },
              { name: 'firstAt', type: timestamp },
              { name: 'lastAt', type: timestamp },
            ],
          },
        ],
        default: null,
      },
      // A named type is defined once per schema; later fields refer to it by its full name.
      { name: 'after', type: TOTALS_NAME },
    ],
  },
  zod: conversionChange,
};
