// Every query the engine itself runs, declared so the index test can check and explain each one
// (domains declare theirs in their Dataflow). Keep this list next to a change of any engine query.
import { DEAD_LETTER_INDEXES, DEAD_LETTERS } from '../state/dead-letters';
import { LEASE_INDEXES, LEASES_COLLECTION } from '../state/leases';
import { LETTER_INDEX } from '../state/letter-index';
import type { CollectionIndexes } from '../state/mongo';
import { OUT_OF_ORDER_COLLECTION, OUT_OF_ORDER_INDEXES } from '../state/out-of-order';
import { PROVENANCE_COLLECTION, PROVENANCE_INDEXES } from '../state/provenance';
import type { DeclaredQuery } from './dataflow';

export const ENGINE_INDEXES: CollectionIndexes[] = [
  DEAD_LETTER_INDEXES,
  PROVENANCE_INDEXES,
  OUT_OF_ORDER_INDEXES,
  LEASE_INDEXES,
];

export const ENGINE_QUERIES: DeclaredQuery[] = [
  {
    name: 'open letters of a stage',
    collection: DEAD_LETTERS,
    filter: { stage: 's', status: { $in: ['parked', 'redriven'] } },
  },
  {
    name: 'open letters of a key',
    collection: DEAD_LETTERS,
    filter: { stage: 's', key: 'k', status: { $in: ['parked', 'redriven'] } },
  },
  {
    name: 'letters of a key in order',
    collection: DEAD_LETTERS,
    filter: { stage: 's', key: 'k' },
    sort: { partition: 1, position: 1 },
  },
  {
    name: 'open keys of a stage, a page at a time',
    collection: DEAD_LETTERS,
    filter: { stage: 's', status: 'parked', key: { $gt: 'k' } },
    sort: { key: 1 },
  },
  {
    // The first page starts at the smallest key (`$gte: ''`), the later ones past the last key seen.
    name: 'open keys of a stage, the first page',
    collection: DEAD_LETTERS,
    filter: { stage: 's', status: 'parked', key: { $gte: '' } },
    sort: { key: 1 },
  },
  {
    name: 'open letters of a batch of keys',
    collection: DEAD_LETTERS,
    filter: { stage: 's', status: 'redriven', key: { $in: ['k1', 'k2'] } },
  },
  {
    name: 'earlier open letters of a re-driven letter',
    collection: DEAD_LETTERS,
    filter: {
      stage: 's',
      key: 'k',
      partition: 0,
      status: 'parked',
      position: { $lt: 10 },
    },
  },
  {
    name: 'letters to re-drive, a page at a time',
    collection: DEAD_LETTERS,
    filter: { stage: 's', key: 'k', status: { $in: ['parked', 'dead'] } },
    sort: { partition: 1, position: 1 },
  },
  {
    name: 'expired resolved letters (sweep)',
    collection: DEAD_LETTERS,
    filter: { status: 'resolved', expiresAt: { $lte: new Date(0) } },
  },
  // Selection by error code and time (`dlq … --code/--since/--until`, /ops): every read is by `_id`.
  {
    name: 'letters of a selection, by id',
    collection: DEAD_LETTERS,
    filter: { _id: { $in: ['s:t:0:1', 's:t:0:2'] } },
  },
  { name: 'a stage’s letter span (code-and-time index)', collection: LETTER_INDEX, filter: { _id: 's|st' } },
  { name: 'stages with letters (index sweep)', collection: LETTER_INDEX, filter: { _id: 'stages' } },
  {
    name: 'hours of a time range (code-and-time index)',
    collection: LETTER_INDEX,
    filter: { _id: { $in: ['h|st|2026-12-06T21', 'h|st|2026-12-06T22'] } },
  },
  {
    name: 'entries of an hour and code (code-and-time index)',
    collection: LETTER_INDEX,
    filter: { _id: { $in: ['e|st|2026-12-06T21|HANDLER_FAILED|0', 'e|st|2026-12-06T21|HANDLER_FAILED|1'] } },
  },
  {
    name: 'provenance by entity',
    collection: PROVENANCE_COLLECTION,
    filter: { key: 'k' },
    sort: { consumedAt: -1 },
  },
  { name: 'provenance by event', collection: PROVENANCE_COLLECTION, filter: { eventId: 'e' } },
  {
    name: 'provenance retention sweep',
    collection: PROVENANCE_COLLECTION,
    filter: { expireAt: { $lt: new Date(0) } },
  },
  {
    // Every record of its own collection is out of order (state/out-of-order.ts): the report reads only those.
    name: 'out-of-order report (ops page)',
    collection: OUT_OF_ORDER_COLLECTION,
    filter: { outOfOrder: true },
    sort: { consumedAt: -1 },
  },
  {
    name: 'provenance out of order (one-time copy)',
    collection: PROVENANCE_COLLECTION,
    filter: { outOfOrder: true },
  },
  {
    name: 'expired out-of-order records (sweep)',
    collection: OUT_OF_ORDER_COLLECTION,
    filter: { expireAt: { $lt: new Date(0) } },
  },
  { name: 'lease by entity', collection: LEASES_COLLECTION, filter: { _id: 'k' } },
];
