// What the ops page's dead-letter routes accept: a stage, statuses, and a selection by key, error code
// (each one Keyflow knows) and a time range of `deadAt`; a mistake is a 400 naming the field.
import { z } from 'zod';
import { ERROR_CODES } from '../errors';
import type { LetterStatus } from '../state/dead-letters';

const STATUSES = ['parked', 'dead', 'redriven', 'resolved'] as const satisfies readonly LetterStatus[];
export const stageName = z.string().min(1).max(200);
const KNOWN_CODES = Object.keys(ERROR_CODES);
/** `code=A,B`: error codes, each one Keyflow knows. */
const codeList = z
  .string()
  .max(2000)
  .transform((s) => [...new Set(s.split(',').map((c) => c.trim()))])
  .pipe(
    z.array(
      z.string().refine((c) => KNOWN_CODES.includes(c), {
        error: (i) => `"${String(i.input)}" is not an error code; known: ${KNOWN_CODES.join(', ')}`,
      }),
    ),
  );
/** An ISO time (`2026-12-06T21:00Z`): when a letter died, for `since` (included) and `until` (excluded). */
const isoTime = z
  .string()
  .max(64)
  .refine((t) => /^\d{4}-\d\d-\d\d/.test(t) && !Number.isNaN(Date.parse(t)), {
    error: 'must be an ISO time such as 2026-12-06T21:00Z',
  })
  .transform((t) => new Date(t));
const selectionFields = {
  key: z.string().min(1).max(512).optional(),
  code: codeList.optional(),
  since: isoTime.optional(),
  until: isoTime.optional(),
};
const untilAfterSince = (s: { since?: Date; until?: Date }) => !s.since || !s.until || s.until > s.since;
const untilMessage = { message: 'until must be after since', path: ['until'] };
export const lettersQuery = z
  .strictObject({
    stage: stageName,
    status: z
      .string()
      .default('parked,dead,redriven')
      .transform((s) => s.split(',').filter(Boolean))
      .pipe(z.array(z.enum(STATUSES)).min(1)),
    limit: z.coerce.number().int().min(1).max(1000).default(200),
    ...selectionFields,
  })
  .refine(untilAfterSince, untilMessage);
export const redriveParams = z.strictObject({ stage: stageName });
export const redriveBody = z.strictObject(selectionFields).refine(untilAfterSince, untilMessage).default({});
export const discardBody = z
  .strictObject({
    letter: z.string().min(1).max(1024).optional(),
    key: z.string().min(1).max(512).optional(),
    reason: z.string().trim().min(1).max(2000),
  })
  .refine((b) => (b.letter === undefined) !== (b.key === undefined), {
    message: 'give exactly one of letter or key',
  });
