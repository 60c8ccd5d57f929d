// What replay costs on a bench store: `replay --id` of one lead, the full pass's rate, and a raw read
// of the same inputs (every history document, archived event and row, streamed) in the same run, so
// the full pass is given as a ratio to the speed of reads on this machine at this moment.
import type { Db } from 'mongodb';
import { ARCHIVE, ROWS } from '../conversions/store';
import { replayEntity } from '../replay/engine';
import { replayAll } from '../replay/full-pass';
import type { ReplayTable } from '../replay/types';
import { historyName } from '../state/entity-history';
import { APPOINTMENT_CHANGES, APPOINTMENT_EVENTS, APPOINTMENTS } from '../appointments/tables';

/** Documents per second of one streaming read of every replay input in the store. */
export async function rawInputRead(db: Db): Promise<{ docs: number; perSecond: number }> {
  const collections = [
    historyName(ARCHIVE),
    ARCHIVE,
    ROWS,
    historyName(APPOINTMENT_EVENTS),
    APPOINTMENT_EVENTS,
    APPOINTMENTS,
    APPOINTMENT_CHANGES,
  ];
  const started = Date.now();
  let docs = 0;
  for (const c of collections) {
    for await (const _doc of db.collection(c).find({}).batchSize(5000)) docs++;
  }
  const ms = Math.max(1, Date.now() - started);
  return { docs, perSecond: Math.round((docs * 1000) / ms) };
}

/**
 * The full pass over the store and a raw read of the same inputs, right after it. A raw read before
 * both warms the server's page cache for them alike: timed first, the pass had read the store cold and
 * left it warm for the raw read after it (22,000 conversions: 0.26 of a raw read that way). The pass
 * then runs again, timed against a raw read after it: on a small store the first pass is mostly the
 * process's and the server's warm-up (22,000 conversions: about 2 s, then about 1 s the second time).
 */
export async function fullPassFigures(
  db: Db,
  tables: readonly ReplayTable[],
  label: string,
): Promise<Record<string, number>> {
  const warm = await rawInputRead(db);
  const figures: Record<string, number> = {
    [`${label}: raw read before the pass (warms the cache), documents/s`]: warm.perSecond,
  };
  for (const run of ['full pass', 'full pass again']) {
    const pass = await replayAll(db, tables, { shards: 4 });
    const raw = await rawInputRead(db);
    const passRate = Math.round((raw.docs * 1000) / Math.max(1, pass.durationMs));
    Object.assign(figures, {
      [`${label}: ${run} entities/s`]: Math.round(pass.rate),
      [`${label}: ${run} input documents/s`]: passRate,
      [`${label}: raw read after the ${run}, documents/s`]: raw.perSecond,
      [`${label}: ${run} / raw read`]: Math.round((passRate / Math.max(1, raw.perSecond)) * 100) / 100,
      [`${label}: ${run} differences`]: pass.differences,
    });
  }
  return figures;
}

/** `replay --id` of a lead (median of 5, after one that readies the history), full pass, raw read. */
export async function replayFigures(
  db: Db,
  tables: readonly ReplayTable[],
  leadId: string,
  label: string,
): Promise<Record<string, number>> {
  await replayEntity(db, tables, leadId);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = Date.now();
    await replayEntity(db, tables, leadId, { entity: 'leadId' });
    times.push(Date.now() - t);
  }
  times.sort((a, b) => a - b);
  return {
    [`${label}: replay --id of a lead (ms, median of 5)`]: times[2]!,
    ...(await fullPassFigures(db, tables, label)),
  };
}
