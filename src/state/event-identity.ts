// An event's identity is its event id WITHIN its tenant: two tenants may use the same id for different
// events, and both count. A re-send of a (tenant, event id) must carry the content it was first
// applied with; one that does not is a reused id, refused with EVENT_ID_REUSED (never applied).
import { KeyflowError } from '../errors';

/**
 * The _id a dedupe document (archive entry, change row) of this event gets: JSON of the two parts, so
 * no tenant or event id, whatever characters it holds, can be confused with another pair.
 */
export function eventKey(tenantId: string, eventId: string): string {
  return JSON.stringify([tenantId, eventId]);
}

/** A field whose value differs between the stored first send and a re-send. */
export interface FieldDifference {
  field: string;
  stored: unknown;
  got: unknown;
}

/** Null and an absent field are the same value (an optional field stored either way). */
function same(a: unknown, b: unknown): boolean {
  const x = a ?? null;
  const y = b ?? null;
  if (x === y) return true;
  if (typeof x === 'object' && typeof y === 'object') return JSON.stringify(x) === JSON.stringify(y);
  return false;
}

/** The listed fields whose values differ, in the order listed. */
export function differingFields<T extends object>(
  stored: T,
  got: T,
  fields: readonly (keyof T & string)[],
): FieldDifference[] {
  return fields
    .filter((f) => !same(stored[f], got[f]))
    .map((f) => ({ field: f, stored: stored[f] ?? null, got: got[f] ?? null }));
}

/** The error for a re-send whose content differs from the first send's; it names each field. */
export function eventIdReused(
  tenantId: string,
  eventId: string,
  differences: readonly FieldDifference[],
): KeyflowError {
  const list = differences
    .map((d) => `${d.field} (first ${JSON.stringify(d.stored)}, now ${JSON.stringify(d.got)})`)
    .join(', ');
  return new KeyflowError(
    'EVENT_ID_REUSED',
    `event id ${eventId} of tenant ${tenantId} was applied before with other content: ${list} differ; ` +
      'a new event needs a new event id',
    { retriable: false, details: { tenantId, eventId, fields: differences.map((d) => d.field) } },
  );
}

/** Throws EVENT_ID_REUSED when a re-send differs from the stored first send in any listed field. */
export function refuseReusedId<T extends object>(
  tenantId: string,
  eventId: string,
  stored: T,
  got: T,
  fields: readonly (keyof T & string)[],
): void {
  const differences = differingFields(stored, got, fields);
  if (differences.length > 0) throw eventIdReused(tenantId, eventId, differences);
}
