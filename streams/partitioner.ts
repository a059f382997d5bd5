/**
 * Kafka's default keyed partitioner: `toPositive(murmur2(key)) % partitions`, bit for bit the Java client's
 * (and kafkajs's DefaultPartitioner). The embedded log uses it so that a key lands on the same partition
 * number as it would on a real cluster: per-key order, and any per-partition state, carry over unchanged.
 */

// Mixing constants and seed of Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2).
const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Kafka's murmur2 hash of the key's bytes, as a signed 32-bit integer (Java's `int`). */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  // Java's int arithmetic wraps at 32 bits: Math.imul and the bitwise operators do the same here.
  let h = SEED ^ length;
  const body = length & ~3;
  for (let i = 0; i < body; i += 4) {
    // Indices below `body` are in bounds, so the non-null assertions cannot lie.
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The Java original falls through a switch here; the compiler forbids fallthrough, so the cases nest.
  const tail = length & 3;
  if (tail >= 3) h ^= data[body + 2]! << 16;
  if (tail >= 2) h ^= data[body + 1]! << 8;
  if (tail >= 1) {
    h ^= data[body]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's `toPositive`: masks the sign bit rather than taking the absolute value, as the Java client does. */
export function toPositive(hash: number): number {
  return hash & 0x7fffffff;
}

/** The partition Kafka's default partitioner picks for a non-null key. Strings are hashed as UTF-8. */
export function partitionForKey(key: Uint8Array | string, partitions: number): number {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return toPositive(murmur2(bytes)) % partitions;
}
