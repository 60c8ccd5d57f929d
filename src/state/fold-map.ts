// A map that a batch fold extends by one entry per event. Copying a Map per event made a hot key's
// batch quadratic: 10,000 conversions of one lead in one delivery cost 85 s of CPU in the fold alone,
// the event loop stood still, heartbeats stopped and the delivery was abandoned and fetched again and
// again. `extend` is O(1) along one fold and every view stays what it was: an older view never sees
// later entries, and extending an older view a second time (a branch) copies what it sees first.

/** What a fold reads of its maps: a plain ReadonlyMap is one, and so is a FoldMap. */
export interface Lookup<K, V> {
  get(key: K): V | undefined;
}

interface Line<K, V> {
  /** Per key, its values in the order they were set, each with the view size that set it. */
  readonly values: Map<K, Array<{ at: number; value: V }>>;
  /** The size of the newest view on this line. */
  length: number;
}

export class FoldMap<K, V> implements Lookup<K, V> {
  private constructor(
    private readonly line: Line<K, V>,
    private readonly size: number,
  ) {}

  static of<K, V>(entries: Iterable<readonly [K, V]> = []): FoldMap<K, V> {
    const values = new Map<K, Array<{ at: number; value: V }>>();
    for (const [k, value] of entries) values.set(k, [{ at: 0, value }]);
    return new FoldMap({ values, length: 1 }, 1);
  }

  get(key: K): V | undefined {
    const versions = this.line.values.get(key);
    if (!versions) return undefined;
    // Along one fold the newest value is this view's; an older view walks back to its own.
    for (let i = versions.length - 1; i >= 0; i--) {
      if (versions[i]!.at < this.size) return versions[i]!.value;
    }
    return undefined;
  }

  /** This map with `key` set to `value`; this view does not change. */
  with(key: K, value: V): FoldMap<K, V> {
    if (this.line.length !== this.size) return this.copy().with(key, value);
    const versions = this.line.values.get(key);
    const entry = { at: this.size, value };
    if (versions) versions.push(entry);
    else this.line.values.set(key, [entry]);
    this.line.length = this.size + 1;
    return new FoldMap(this.line, this.size + 1);
  }

  private copy(): FoldMap<K, V> {
    const seen: Array<[K, V]> = [];
    for (const k of this.line.values.keys()) {
      const v = this.get(k);
      if (v !== undefined) seen.push([k, v]);
    }
    return FoldMap.of(seen);
  }
}

/** `map` with `key` set to `value`, in O(1) once `map` is a FoldMap (a plain map is copied once). */
export function extend<K, V>(map: Lookup<K, V> & Partial<Iterable<[K, V]>>, key: K, value: V): FoldMap<K, V> {
  if (map instanceof FoldMap) return map.with(key, value);
  return FoldMap.of(map as Iterable<[K, V]>).with(key, value);
}
