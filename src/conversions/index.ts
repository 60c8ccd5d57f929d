// The lead global conversions dataflow: upstream conversions in, RSLeadGlobalConversions derived from
// an archive of distinct events, one change record out per applied event, replay and HTTP routes.
import type { Dataflow } from '../runtime/dataflow';
import { topic } from '../topology/define';
import { conversionsReplay } from './replay';
import { conversionsRoutes } from './routes';
import {
  CHANGES_TOPIC,
  CONVERSIONS_TOPIC,
  conversionChangeSchema,
  conversionEventSchema,
  STAGE_NAME,
} from './schemas';
import { conversionsStage } from './stage';
import { CONVERSION_INDEXES, CONVERSION_QUERIES } from './store';

const PARTITIONS = 6;

export interface ConversionsFlowOptions {
  /** Renames the topics and the stage (`<prefix>.<name>`), for tests that need their own. */
  prefix?: string;
}

export function conversionsFlow(opts: ConversionsFlowOptions = {}): Dataflow {
  const named = (name: string) => (opts.prefix ? `${opts.prefix}.${name}` : name);
  const input = named(CONVERSIONS_TOPIC);
  const output = named(CHANGES_TOPIC);
  return {
    name: 'conversions',
    topics: [
      topic(input, { partitions: PARTITIONS, key: 'leadId', value: conversionEventSchema }),
      topic(output, { partitions: PARTITIONS, key: 'leadId', value: conversionChangeSchema }),
    ],
    stages: [conversionsStage({ name: named(STAGE_NAME), input, output })],
    indexes: CONVERSION_INDEXES,
    queries: CONVERSION_QUERIES,
    replay: [conversionsReplay],
    adminRoutes: (ctx) => conversionsRoutes(ctx.db),
  };
}

export { foldConversion, type ConversionPlan, type LeadState } from './fold';
export { reduceConversions, rowIdOf, totalsOf } from './reducer';
export type { ConversionRow, RowKey } from './reducer';
export { conversionsReplay } from './replay';
export { conversionsRoutes, tenantTotals } from './routes';
export * from './schemas';
export { ARCHIVE, ROWS } from './store';
