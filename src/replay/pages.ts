// A full pass's pages of entity ids: the tables grouped by entity kind, each shard's id range (bounds cut
// from a sample of ids) or its hash share, and the pages a shard reads, one stream per range or one
// paged read per table merged in id order.
import type { Db } from 'mongodb';
import type { ReplayTable } from './types';

export interface Group {
  entity: string;
  tables: ReplayTable[];
}

export function groupsOf(tables: readonly ReplayTable[]): Group[] {
  const groups = new Map<string, ReplayTable[]>();
  for (const t of tables) groups.set(t.entity, [...(groups.get(t.entity) ?? []), t]);
  return [...groups].map(([entity, ts]) => ({ entity, tables: ts }));
}

/** MongoDB orders strings by their UTF-8 bytes (simple collation); JS `<` does not, past U+FFFF. */
export function compareIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The next ids of a group after `after`, merged over its tables. A table that returned a full batch may
 * hold more ids below another table's last one, so ids past the smallest full batch's last id wait for
 * the next call; `exhausted` when no table had a full batch.
 */
export async function nextIds(
  db: Db,
  tables: readonly ReplayTable[],
  after: string | undefined,
  batch: number,
): Promise<{ ids: string[]; exhausted: boolean }> {
  const lists = await Promise.all(tables.map((t) => t.entityIds(db, after, batch)));
  if (lists.length === 1) return { ids: lists[0]!, exhausted: lists[0]!.length < batch };
  let bound: string | undefined;
  for (const l of lists) {
    const last = l[l.length - 1];
    if (l.length >= batch && last !== undefined && (bound === undefined || compareIds(last, bound) < 0)) {
      bound = last;
    }
  }
  const ids = [...new Set(lists.flat())]
    .filter((id) => bound === undefined || compareIds(id, bound) <= 0)
    .sort(compareIds);
  return { ids, exhausted: bound === undefined };
}

export async function estimate(db: Db, groups: Group[]): Promise<number | null> {
  let total: number | null = null;
  for (const g of groups) {
    const counts = await Promise.all(g.tables.map((t) => t.estimateEntities?.(db)));
    const known = counts.filter((c): c is number => typeof c === 'number');
    if (known.length) total = (total ?? 0) + Math.max(...known);
  }
  return total;
}

const PAGE_MIN = 64;
const PAGE_MAX = 500;
const PAGES_PER_SHARD = 8;

/**
 * A new run's page size (see ReplayAllOptions.batch). Only range shards get smaller pages: each reads its
 * own range as one stream, so a page costs the same whatever its size. A hash shard pages every id of the
 * group and keeps its share, one query per page, so smaller pages would multiply its reads.
 */
export function pageSize(estimated: number | null, shards: number, ranged: boolean): number {
  if (estimated === null || !ranged) return PAGE_MAX;
  const share = Math.ceil(estimated / (shards * PAGES_PER_SHARD));
  return Math.min(PAGE_MAX, Math.max(PAGE_MIN, share));
}

/** Whether a group's ids can be walked as one stream per id range (every table walks the same ids). */
const walks = (g: Group) => g.tables.every((t) => t.walkIds && t.sampleIds);

/**
 * Ids a group's sample may hold: below this many entities the sample is every id, and the pass pages
 * its shards from it. Each shard walking its own range costs a scan of the history per shard on a server
 * without range reads on an index (mongo-java-server): with 20,000 leads and 4 shards the walks were a
 * third of the server's time in the pass. 1,000,000 ids keep well under 100 MB in the process.
 */
export const KNOWN_IDS_MAX = 1_000_000;

export interface GroupIds {
  /** Per group, the shards' cuts (shard s walks (cuts[s-1], cuts[s]]), or null: its shards hash. */
  bounds: (string[] | null)[];
  /** Per group, every id in order when the sample held them all (then no shard walks), else null. */
  known: (string[] | null)[];
}

/**
 * Each group's shard bounds, cut at the quantiles of a sample of the group's ids, and the ids themselves
 * when the sample is all of them. A group that cannot walk (no walkIds) has none and its shards hash;
 * null when no group walks.
 */
export async function rangeBounds(
  db: Db,
  groups: Group[],
  shards: number,
  maxKnown = KNOWN_IDS_MAX,
): Promise<GroupIds | null> {
  if (!groups.some(walks)) return null;
  const out: GroupIds = { bounds: [], known: [] };
  for (const g of groups) {
    if (!walks(g)) {
      out.bounds.push(null);
      out.known.push(null);
      continue;
    }
    const { ids, complete } = await g.tables[0]!.sampleIds!(db, maxKnown);
    const sample = [...new Set(ids)].sort(compareIds);
    const cuts: string[] = [];
    for (let s = 1; s < shards && sample.length; s++) {
      const cut = sample[Math.floor((s * sample.length) / shards)]!;
      if (cuts[cuts.length - 1] !== cut) cuts.push(cut);
    }
    // Fewer distinct cuts than shards (a small group): the later shards' ranges are empty.
    while (cuts.length < shards - 1) cuts.push(cuts[cuts.length - 1] ?? '');
    out.bounds.push(cuts);
    out.known.push(complete ? sample : null);
  }
  return out;
}

export interface Page {
  ids: string[];
  /** The last page of the shard's range in this group. */
  exhausted: boolean;
}

/** The index of the first id of `sorted` above `id` (all of them when `id` is undefined). */
function firstAfter(sorted: readonly string[], id: string | undefined): number {
  if (id === undefined) return 0;
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareIds(sorted[mid]!, id) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A shard's pages of one group: the ids of its range, `batch` at a time, sliced from the group's known
 * ids when the pass read them all, else as one stream of the range.
 */
export async function* rangePages(
  db: Db,
  group: Group,
  range: { after?: string; to?: string },
  batch: number,
  known: readonly string[] | null = null,
): AsyncGenerator<Page> {
  if (known) {
    const from = firstAfter(known, range.after);
    const to = range.to === undefined ? known.length : firstAfter(known, range.to);
    for (let i = from; i < to; i += batch) {
      const end = Math.min(to, i + batch);
      yield { ids: known.slice(i, end), exhausted: end === to };
    }
    if (from >= to) yield { ids: [], exhausted: true };
    return;
  }
  let ids: string[] = [];
  for await (const id of group.tables[0]!.walkIds!(db, range.after, range.to)) {
    ids.push(id);
    if (ids.length === batch) {
      yield { ids, exhausted: false };
      ids = [];
    }
  }
  yield { ids, exhausted: true };
}

/** A shard's pages of one group by hash: every id paged, those of the shard kept. */
export async function* hashPages(
  db: Db,
  group: Group,
  after: string | undefined,
  batch: number,
  keep: (id: string) => boolean,
): AsyncGenerator<Page & { last: string | undefined }> {
  let cursor = after;
  for (;;) {
    const { ids, exhausted } = await nextIds(db, group.tables, cursor, batch);
    cursor = ids[ids.length - 1] ?? cursor;
    yield { ids: ids.filter(keep), exhausted, last: ids[ids.length - 1] };
    if (exhausted) return;
  }
}
