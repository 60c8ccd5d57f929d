// The bytes of fetched records this process holds at once, across every stage, partition and lane: a
// delivery takes its size from the budget before it is worked on and gives it back when it is done, so
// a burst from one hot customer waits for room instead of growing memory without bound.
export class ByteBudget {
  private used = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  /**
   * Resolves once `bytes` fit (a delivery larger than the whole budget is let through alone, so it can
   * never wait for ever). Waiters are served in arrival order. Returns the release function.
   */
  async take(bytes: number): Promise<() => void> {
    const size = Math.min(bytes, this.limit);
    if (this.waiting.length > 0 || this.used + size > this.limit) {
      await new Promise<void>((grant) => this.waiting.push({ bytes: size, grant }));
    } else {
      this.used += size;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= size;
      this.serve();
    };
  }

  private serve(): void {
    while (this.waiting.length > 0 && this.used + this.waiting[0]!.bytes <= this.limit) {
      const next = this.waiting.shift()!;
      this.used += next.bytes;
      next.grant();
    }
  }
}

/** What one delivery holds in memory: keys, values and headers of its records. */
export function deliveryBytes(
  messages: readonly { key: Buffer | null; value: Buffer | null; headers: Record<string, string> }[],
): number {
  let n = 0;
  for (const m of messages) {
    n += (m.key?.length ?? 0) + (m.value?.length ?? 0);
    for (const [k, v] of Object.entries(m.headers)) n += k.length + v.length;
  }
  return n;
}
