// The `lead-conversions` action stage: archive each distinct conversion once, with the change it made,
// then derive the lead's row from the archive; emit that one change to `changes.lead-conversions.v1`.
import { KeyflowError } from '../errors';
import { archiveEvent } from '../state/archive';
import type { ActionStageSpec } from '../topology/types';
import { applyConversion, rowIdOf, type ConversionPlan, type ConversionState, type RowKey } from './reducer';
import type { ConversionEvent } from './schemas';
import {
  archiveOf,
  recordedChange,
  rowEvents,
  setRowIfUnchanged,
  storedTotals,
  type ConversionArchiveDoc,
} from './store';

export interface ConversionStageNames {
  name: string;
  input: string;
  output: string;
}

const keyOf = (v: ConversionEvent): RowKey => ({
  tenantId: v.tenantId,
  leadId: v.leadId,
  conversionType: v.conversionType,
});

export function conversionsStage(
  names: ConversionStageNames,
): ActionStageSpec<ConversionEvent, ConversionState, ConversionPlan> {
  return {
    kind: 'action',
    name: names.name,
    inputs: [names.input],
    outputs: [names.output],
    description: 'Counts conversions per (tenant, lead, type), derived from an archive of distinct events.',
    // The contract names the event's identity in the value; upstream sends no Keyflow headers.
    eventId: (v) => (v as ConversionEvent).eventId,
    occurredAt: (v) => (v as ConversionEvent).occurredAt,
    tenantId: (v) => (v as ConversionEvent).tenantId,
    handler: {
      // The value's eventId, not the delivery's: an upstream re-send is the same event whatever its headers.
      // The row is read BEFORE the archive: a row only reflects archived events, so the archive read
      // after it holds all of them, and `after` derived from it never drops an event the row had.
      async read(e, ctx) {
        const k = keyOf(e.value);
        const stored = await storedTotals(ctx.db, k);
        const [recorded, events] = await Promise.all([
          recordedChange(ctx.db, e.value.eventId),
          rowEvents(ctx.db, k),
        ]);
        return { recorded, rowEvents: events, stored };
      },

      decide(e, state) {
        const { plan, change, outOfOrder } = applyConversion(e.value, state);
        return {
          plan,
          emit: [{ topic: names.output, key: e.value.leadId, value: change, occurredAt: e.value.occurredAt }],
          outOfOrder,
        };
      },

      // Write order, and why a death between any two steps is safe (the offset is committed only after
      // all of them and the emit, so the event always comes again):
      //  1. Archive the event WITH its change record, in one insert: "counted" and "change recorded"
      //     cannot come apart. Dying before it leaves nothing; the redelivery is treated as new.
      //  2. Set the row to what the row's archived events give. Dying before it leaves the row lagging;
      //     the redelivery finds the event archived, re-emits the recorded change and re-derives the
      //     row (setRow). So does any later event of the row: every decision reads the row's archive.
      //  3. The runner emits the change and commits. Dying before that re-emits the recorded change,
      //     identical, under the same derived event id.
      // The reverse order (row first) would count a redelivered event twice.
      async write(plan, e, ctx) {
        if (plan.archive !== null) {
          const doc: ConversionArchiveDoc = {
            _id: e.value.eventId,
            entityId: e.value.leadId,
            tenantId: e.value.tenantId,
            occurredAt: e.value.occurredAt,
            arrivedAt: ctx.now(),
            topic: e.topic,
            partition: e.partition,
            offset: Number(e.offset),
            value: { conversionType: e.value.conversionType, amount: e.value.amount, change: plan.archive },
          };
          if ((await archiveEvent(archiveOf(ctx.db), doc)) === 'duplicate') {
            // Read said new, yet it is archived now: another instance (a partition's former owner
            // finishing its batch) got there first. Retrying reads and re-emits ITS recorded change.
            throw new KeyflowError('HANDLER_TRANSIENT', `conversion ${doc._id} was archived concurrently`, {
              details: { eventId: doc._id },
            });
          }
        }
        // Compare-and-set against the row as read: if another instance (or a replay repair) changed it
        // since, our `after` may lack its event, so read again; the retry finds this event archived.
        if (plan.setRow) {
          const row = { ...plan.row, ...plan.after };
          if ((await setRowIfUnchanged(ctx.db, row, plan.asRead, ctx.now())) === 'changed') {
            throw new KeyflowError('HANDLER_TRANSIENT', `row ${rowIdOf(row)} changed since it was read`, {
              details: { eventId: e.value.eventId },
            });
          }
        }
        return plan.archive !== null ? 'applied' : 'duplicate';
      },
    },
  };
}
