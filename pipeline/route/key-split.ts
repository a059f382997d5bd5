/**
 * The canary split: which events a step's canary decides for. The split is a hash of the event's decision
 * key (`IngestedEvent.key`), so it is sticky (one card always sees one version, across blocks, threads,
 * restarts and daemons) and needs no state.
 *
 * The hash is FNV-1a over the key's UTF-8 bytes, finished with murmur3's fmix32 avalanche: FNV-1a alone
 * mixes its last bytes poorly, so keys differing only at the end (`card-00017`, `card-00018`) would land
 * near each other. It is deliberately not Kafka's murmur2 partitioner hash: with the same hash, the canary
 * share would follow partition boundaries (a whole partition in or out) instead of cutting across them.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const HASH_SPACE = 0x1_0000_0000;

/** murmur3's 32-bit finaliser: every input bit flips each output bit with probability about 1/2. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The key's 32-bit split hash, an unsigned integer in [0, 2^32): FNV-1a over its UTF-8 bytes (encoded
 * inline, without allocating), then fmix32. A lone surrogate hashes as U+FFFD, as TextEncoder encodes it.
 */
export function keyHash32(key: string): number {
  let h = FNV_OFFSET;
  const byte = (b: number): void => {
    h = Math.imul(h ^ b, FNV_PRIME);
  };
  for (let i = 0; i < key.length; i++) {
    let c = key.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    if (c < 0x800) {
      byte(0xc0 | (c >> 6));
      byte(0x80 | (c & 0x3f));
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = key.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        byte(0xf0 | (c >> 18));
        byte(0x80 | ((c >> 12) & 0x3f));
        byte(0x80 | ((c >> 6) & 0x3f));
        byte(0x80 | (c & 0x3f));
        continue;
      }
      c = 0xfffd;
    }
    byte(0xe0 | (c >> 12));
    byte(0x80 | ((c >> 6) & 0x3f));
    byte(0x80 | (c & 0x3f));
  }
  return fmix32(h);
}

/**
 * The hash threshold of a canary share: a key is in the canary when `keyHash32(key) < threshold`, i.e. when
 * its hash falls in the first `percent` % of the hash space. `percent` in (0, 100]; 100 takes every key.
 */
export function canaryThreshold(percent: number): number {
  return Math.min(HASH_SPACE, Math.floor((percent / 100) * HASH_SPACE));
}

/** Whether the event with decision key `key` goes to a canary taking `percent` % of keys. */
export function inCanary(key: string, percent: number): boolean {
  return keyHash32(key) < canaryThreshold(percent);
}
