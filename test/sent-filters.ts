// What a MongoDB command filters on, read from the command as the driver sends it (command monitoring),
// so tests hold the code to the hot-path rule on what it really sends, not on what it declares.
import type { CommandStartedEvent, Document } from 'mongodb';

export interface SentFilter {
  command: string;
  collection: string;
  filter: Document;
}

/** The filters of one command: a find's, each update's and delete's, an aggregate's leading $match. */
export function sentFilters(e: CommandStartedEvent): SentFilter[] {
  const c = e.command;
  const of = (filter: unknown): SentFilter => ({
    command: e.commandName,
    collection: String(c[e.commandName]),
    filter: (filter ?? {}) as Document,
  });
  switch (e.commandName) {
    case 'find':
      return [of(c.filter)];
    case 'count':
    case 'distinct':
    case 'findAndModify':
      return [of(c.query)];
    case 'update':
      return (c.updates as { q: Document }[]).map((u) => of(u.q));
    case 'delete':
      return (c.deletes as { q: Document }[]).map((d) => of(d.q));
    case 'aggregate':
      // A pipeline that does not open with $match reads the whole collection: its filter is {}.
      return [of((c.pipeline as Document[])[0]?.$match)];
    default:
      return [];
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

/** True when the filter names its documents by _id (a value, or an $in list): it touches those alone. */
export function isByIdFilter(filter: Document): boolean {
  const id: unknown = filter._id;
  if (id === undefined) return false;
  if (!isPlainObject(id)) return true;
  return Object.keys(id).join() === '$in' && Array.isArray(id.$in);
}

/** A filter's shape: its fields, each with the operators it uses (`eq` for a plain value), sorted. */
export function filterShape(filter: Document): string {
  return Object.entries(filter)
    .map(([field, v]) => {
      if (Array.isArray(v)) return `${field}[${v.map((x) => filterShape(x as Document)).join('|')}]`;
      const ops =
        isPlainObject(v) && Object.keys(v).every((k) => k.startsWith('$')) ? Object.keys(v).sort() : ['eq'];
      return `${field}:${ops.join('+')}`;
    })
    .sort()
    .join(',');
}
