// Correctness at the end of a run: the tables a contestant wrote, compared with the ground truth the
// pure reducers give for the distinct events. Every difference is counted and the first few named,
// so a wrong result says where it is wrong.
import { PRELOAD_TENANT } from './preload';
import type { Db } from 'mongodb';
import { stateOf } from '../appointments/decide';
import type { AppointmentState } from '../appointments/reducer';
import { appointments, changes } from '../appointments/tables';
import { rowsOf } from '../conversions/store';
import type { Truth } from './events';

export interface TableCheck {
  correct: boolean;
  notes: string[];
  /** Change rows the contestant flagged out of order. */
  flagged: number;
}

/** JSON with sorted keys, so two equal documents compare equal whatever their field order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export async function checkTables(db: Db, truth: Truth): Promise<TableCheck> {
  const notes: string[] = [];
  const docs = await appointments(db).find({}).toArray();
  let wrongAppointments = 0;
  const seen = new Set<string>();
  for (const doc of docs) {
    seen.add(doc._id);
    const want: AppointmentState | undefined = truth.appointments.get(doc._id);
    if (!want || canonicalJson(stateOf(doc)) !== canonicalJson(want)) {
      if (wrongAppointments++ < 3) notes.push(`RSAppointment ${doc._id} differs from the truth`);
    }
  }
  const missingAppointments = [...truth.appointments.keys()].filter((id) => !seen.has(id)).length;
  if (wrongAppointments) notes.push(`${wrongAppointments} RSAppointment document(s) differ`);
  if (missingAppointments)
    notes.push(`${missingAppointments} of ${truth.appointments.size} appointment(s) missing`);

  const rows = await changes(db).countDocuments({});
  const flagged = await changes(db).countDocuments({ outOfOrder: true });
  if (rows !== truth.changeRows)
    notes.push(`RSAppointmentChanges has ${rows} row(s), the truth ${truth.changeRows}`);

  let wrongRows = 0;
  // A growth run's preloaded history is not part of the burst's truth.
  const rowDocs = await rowsOf(db)
    .find({ tenantId: { $ne: PRELOAD_TENANT } })
    .toArray();
  for (const r of rowDocs) {
    const want = truth.conversions.get(JSON.stringify([r.tenantId, r.leadId, r.conversionType]));
    const same =
      want !== undefined &&
      want.count === r.count &&
      want.amount === r.amount &&
      want.firstAt === r.firstAt &&
      want.lastAt === r.lastAt;
    if (!same && wrongRows++ < 3) notes.push(`RSLeadGlobalConversions ${r._id} differs from the truth`);
  }
  if (wrongRows) notes.push(`${wrongRows} RSLeadGlobalConversions row(s) differ`);
  if (rowDocs.length !== truth.conversions.size) {
    notes.push(`RSLeadGlobalConversions has ${rowDocs.length} row(s), the truth ${truth.conversions.size}`);
  }
  const correct =
    wrongAppointments === 0 &&
    missingAppointments === 0 &&
    rows === truth.changeRows &&
    wrongRows === 0 &&
    rowDocs.length === truth.conversions.size;
  return { correct, notes, flagged };
}
