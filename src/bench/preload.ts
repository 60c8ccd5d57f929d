// The growth scenario's preload: a conversions store that already holds a long history (archived
// events and their rows), written by bulk insert so setup takes seconds, not a replay of the topic.
// Its tenant is kept apart, so the burst's ground truth and the correctness check ignore it.
import type { Db } from 'mongodb';
import { historyOf, markHistoryBuilt, type HistoryDoc } from '../state/entity-history';
import { addEvent, archiveIdOf, publicTotals, rowIdOf, type ExactTotals } from '../conversions/reducer';
import type { ConversionChange } from '../conversions/schemas';
import { ARCHIVE, archiveOf, rowsOf, type ConversionArchiveDoc, type RowDoc } from '../conversions/store';

export const PRELOAD_TENANT = 'preloaded';
const TYPES = ['contacted', 'appointment_set', 'sold'];
const CHUNK = 5_000;

export interface PreloadSpec {
  conversions: number;
  leads: number;
}

/** Writes `conversions` archived events over `leads` leads and the rows they make; returns the ms taken. */
export async function preloadConversions(
  db: Db,
  spec: PreloadSpec,
  onProgress?: (done: number) => void,
): Promise<number> {
  const started = Date.now();
  const totals = new Map<string, { key: RowDoc; t: ExactTotals }>();
  // Each lead's history by _id, as the live stage keeps it (state/entity-history.ts).
  const histories = new Map<string, HistoryDoc>();
  const base = Date.UTC(2025, 0, 1);
  let docs: ConversionArchiveDoc[] = [];
  const flush = async () => {
    if (docs.length === 0) return;
    const batch = docs;
    docs = [];
    await archiveOf(db).insertMany(batch as never[], { ordered: false });
  };
  for (let i = 0; i < spec.conversions; i++) {
    const leadId = `pre-${i % spec.leads}`;
    const conversionType = TYPES[Math.floor(i / spec.leads) % TYPES.length]!;
    const event = {
      eventId: `pre-e${i}`,
      tenantId: PRELOAD_TENANT,
      leadId,
      conversionType,
      occurredAt: base + i * 1000,
      amount: conversionType === 'sold' ? (i % 500) / 4 : null,
    };
    const id = rowIdOf(event);
    let h = histories.get(leadId);
    if (!h)
      histories.set(
        leadId,
        (h = { _id: leadId, entityId: leadId, events: [], rows: [], touchedAt: new Date(0) }),
      );
    h.events.push(archiveIdOf(event));
    if (!h.rows!.includes(id)) h.rows!.push(id);
    const row = totals.get(id);
    const before = row?.t ?? null;
    const after = addEvent(before, event);
    const change: ConversionChange = {
      tenantId: PRELOAD_TENANT,
      leadId,
      conversionType,
      eventId: event.eventId,
      occurredAt: event.occurredAt,
      outOfOrder: false,
      before: publicTotals(before),
      after: publicTotals(after)!,
    };
    totals.set(id, { key: row?.key ?? ({ _id: id } as RowDoc), t: after });
    docs.push({
      _id: archiveIdOf(event),
      eventId: event.eventId,
      entityId: leadId,
      tenantId: PRELOAD_TENANT,
      occurredAt: event.occurredAt,
      arrivedAt: event.occurredAt,
      topic: 'preload',
      partition: 0,
      offset: i,
      value: { conversionType, amount: event.amount, change },
      counted: true,
    });
    if (docs.length >= CHUNK) {
      await flush();
      onProgress?.(i + 1);
    }
  }
  await flush();
  const rows: RowDoc[] = [];
  for (const [id, { t }] of totals) {
    const [tenantId, leadId, conversionType] = JSON.parse(id) as [string, string, string];
    const p = publicTotals(t)!;
    rows.push({
      _id: id,
      tenantId,
      leadId,
      conversionType,
      ...p,
      amountMicros: t.micros.toString(),
      version: 1,
      pending: [],
      updatedAt: started,
    });
  }
  for (let i = 0; i < rows.length; i += CHUNK) {
    await rowsOf(db).insertMany(rows.slice(i, i + CHUNK), { ordered: false });
  }
  const list = [...histories.values()];
  for (let i = 0; i < list.length; i += CHUNK) {
    await historyOf(db, ARCHIVE).insertMany(list.slice(i, i + CHUNK), { ordered: false });
  }
  await markHistoryBuilt(db, ARCHIVE);
  return Date.now() - started;
}
