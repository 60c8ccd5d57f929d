// Compares an entity's recomputed rows with the stored ones, field by field. Values are normalised
// first so that storage artefacts are not reported as drift: a Date equals its epoch ms, a BSON Long or
// Int32 equals the JS number, and an absent field equals null (the driver stores undefined as null).
import type { Difference, Row } from './types';

/** The `field` of a Difference for a whole row that is missing or unexpected. */
export const ROW_FIELD = '(row)';

type Normal = null | boolean | number | string | Normal[] | { [k: string]: Normal };

interface BsonLike {
  _bsontype?: string;
  toNumber?(): number;
  toHexString?(): string;
  toString(): string;
  valueOf(): unknown;
}

/** BSON wrapper types as the plain JS value they stand for; other values unchanged. */
function unwrapBson(value: unknown): unknown {
  const b = value as BsonLike;
  switch (b?._bsontype) {
    case 'Long':
      return b.toNumber!();
    case 'Int32':
    case 'Double':
      return Number(b.valueOf());
    case 'Decimal128':
      return Number(b.toString());
    case 'ObjectId':
    case 'ObjectID':
      return b.toHexString!();
    case 'UUID':
    case 'Binary':
      return b.toString();
    default:
      return value;
  }
}

/** The comparable form of a value: dates as epoch ms, BSON numbers as numbers, object keys sorted. */
export function normalise(value: unknown): Normal {
  const v = unwrapBson(value);
  if (v === undefined || v === null) return null;
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(normalise);
  if (typeof v === 'object') {
    const out: { [k: string]: Normal } = {};
    for (const key of Object.keys(v).sort()) {
      const n = normalise((v as Record<string, unknown>)[key]);
      // A nested key holding null and an absent one mean the same to every reducer we have.
      if (n !== null) out[key] = n;
    }
    return out;
  }
  return String(v);
}

function equalNormal(a: Normal, b: Normal): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => equalNormal(x, b[i]!));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && equalNormal(a[k]!, b[k]!));
}

/** Deep equality after normalisation. */
export function sameValue(a: unknown, b: unknown): boolean {
  return equalNormal(normalise(a), normalise(b));
}

/**
 * A value as reports show it: BSON wrappers as plain values and absent as null, so that JSON output
 * keeps every difference's `expected` and `actual` keys; Dates stay Dates (they print as ISO text).
 */
export function plain(value: unknown): unknown {
  const v = unwrapBson(value);
  if (v === undefined) return null;
  if (v === null || v instanceof Date || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(plain);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = plain(x);
  return out;
}

/** A row's identity as text: its _id when that is a string, else the _id's normalised JSON. */
export function rowKey(id: unknown): string {
  const n = normalise(id);
  return typeof n === 'string' ? n : JSON.stringify(n);
}

/** The compared part of a row (its _id and `fields`), as a `(row)` difference shows it. */
function project(row: Row, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { _id: plain(row._id) };
  for (const f of fields) out[f] = plain(row[f]);
  return out;
}

export interface DiffInput {
  entityId: string;
  table: string;
  fields: readonly string[];
  expected: readonly Row[];
  actual: readonly Row[];
}

/**
 * Every difference between the recomputed and the stored rows: per row present on both sides, one per
 * compared field that differs; a `(row)` difference for a row on one side only. Ordered by row, then
 * by the table's field order, so two runs over the same state report identically.
 */
export function diffRows(input: DiffInput): Difference[] {
  const { entityId, table, fields } = input;
  const actualByKey = new Map(input.actual.map((r) => [rowKey(r._id), r]));
  const expectedKeys = new Set<string>();
  const out: Difference[] = [];
  for (const exp of input.expected) {
    const row = rowKey(exp._id);
    expectedKeys.add(row);
    const act = actualByKey.get(row);
    if (!act) {
      out.push({ entityId, table, row, field: ROW_FIELD, expected: project(exp, fields), actual: null });
      continue;
    }
    for (const field of fields) {
      if (!sameValue(exp[field], act[field])) {
        out.push({ entityId, table, row, field, expected: plain(exp[field]), actual: plain(act[field]) });
      }
    }
  }
  for (const [row, act] of actualByKey) {
    if (!expectedKeys.has(row)) {
      out.push({ entityId, table, row, field: ROW_FIELD, expected: null, actual: project(act, fields) });
    }
  }
  return out.sort((a, b) => (a.row < b.row ? -1 : a.row > b.row ? 1 : 0));
}
