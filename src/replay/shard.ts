// Which shard of a full replay pass an entity belongs to. The hash must never change silently: a run
// resumed from its checkpoints relies on every entity landing in the same shard as before, so each run
// records SHARD_HASH and a resume under another hash is refused.
//
// shardOf(id, n) = fmix32(fnv1a32(utf8(id))) mod n
//   fnv1a32: FNV-1a, 32-bit, offset basis 0x811c9dc5, prime 0x01000193, over the id's UTF-8 bytes.
//   fmix32: MurmurHash3's finaliser (xor-shift 16, ×0x85ebca6b, xor-shift 13, ×0xc2b2ae35, xor-shift 16),
//   because FNV-1a's low bits are weak for ids differing only in their last characters (`lead-1`,
//   `lead-2`, ...) and `mod n` reads exactly those bits.
// Both are tiny, dependency-free and identical in every language, so another tool can pick the same shard.

export const SHARD_HASH = 'fnv1a32+fmix32';

/** A run whose shards own id ranges (bounds kept in the run) instead of hashes. */
export const RANGE_SHARDS = 'range';

export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function shardOf(entityId: string, shards: number): number {
  return fmix32(fnv1a32(entityId)) % shards;
}
