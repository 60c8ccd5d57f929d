// The one pager: walks a query in pages by a cursor (the last item's sort key), so no reply grows
// unbounded and every page is an index range. Callers give the page read and how to take the cursor.

export interface PageOptions<T, C> {
  /** Items per page. */
  pageSize: number;
  /** The cursor after an item: the next page starts past it. */
  cursor: (last: T) => C;
  /** At most this many items in all (default: no bound). */
  limit?: number;
}

/** Yields pages of `read(after, size)` until a short page, an empty one, or `limit` items. */
export async function* pages<T, C>(
  read: (after: C | undefined, size: number) => Promise<T[]>,
  opts: PageOptions<T, C>,
): AsyncGenerator<T[]> {
  const limit = opts.limit ?? Infinity;
  let seen = 0;
  let after: C | undefined;
  while (seen < limit) {
    const size = Math.max(1, Math.min(opts.pageSize, limit - seen));
    const page = await read(after, size);
    if (page.length === 0) return;
    seen += page.length;
    yield page;
    if (page.length < size) return;
    after = opts.cursor(page[page.length - 1]!);
  }
}
