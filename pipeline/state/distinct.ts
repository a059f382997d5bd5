/**
 * Distinct counts in bucketed windows (bucket geometry: buckets.ts).
 *
 * Per key: one set of values per bucket (strings as is; numbers and booleans via String(), so 1 and "1"
 * are one value), ascending by bucket index, and a count of how many retained buckets hold each value
 * (`refs`): its size is the number of distinct values retained, which the bound is checked against
 * without a union per event. A window's value is the size of the union of its buckets' sets.
 *
 * The bound: a value that no retained bucket holds is not added while `maxDistinct` values are retained
 * (after this event's drop of expired buckets); the window's value is then a lower bound, and the caller
 * counts the saturation.
 */
import { shiftOut } from './buckets.js';

export interface DistinctSlot {
  /** Bucket indices, ascending. */
  readonly idx: number[];
  /** The values of bucket idx[i]. */
  readonly sets: Set<string>[];
  /** Value -> number of retained buckets holding it. */
  readonly refs: Map<string, number>;
}

export function emptyDistinct(): DistinctSlot {
  return { idx: [], sets: [], refs: new Map() };
}

/** The distinct form of a field value: strings as is, numbers and booleans via String(); null for anything else. */
export function distinctForm(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

/** Adds `value` to bucket `bucket`. Returns false when the bound kept it out (saturated), else true. */
export function addDistinct(slot: DistinctSlot, bucket: number, value: string, maxDistinct: number): boolean {
  const held = slot.refs.get(value);
  let pos = slot.idx.length;
  while (pos > 0 && (slot.idx[pos - 1] as number) > bucket) pos--;
  const existing = pos > 0 && slot.idx[pos - 1] === bucket ? slot.sets[pos - 1] : undefined;
  if (existing !== undefined && existing.has(value)) return true;
  if (held === undefined && slot.refs.size >= maxDistinct) return false;
  let set = existing;
  if (set === undefined) {
    set = new Set();
    if (pos === slot.idx.length) {
      slot.idx.push(bucket);
      slot.sets.push(set);
    } else {
      slot.idx.splice(pos, 0, bucket);
      slot.sets.splice(pos, 0, set);
    }
  }
  set.add(value);
  slot.refs.set(value, (held ?? 0) + 1);
  return true;
}

/** Drops the leading buckets with index <= floor, releasing their values. */
export function dropDistinct(slot: DistinctSlot, floor: number): void {
  let k = 0;
  while (k < slot.idx.length && (slot.idx[k] as number) <= floor) {
    for (const v of slot.sets[k] as Set<string>) {
      const r = (slot.refs.get(v) as number) - 1;
      if (r === 0) slot.refs.delete(v);
      else slot.refs.set(v, r);
    }
    k++;
  }
  if (k > 0) {
    shiftOut(slot.idx, k);
    shiftOut(slot.sets, k);
  }
}

/**
 * The number of distinct values over buckets with lo < index <= hi. When the range holds every retained
 * bucket (the usual read at the key's latest time), that is `refs.size`; else a union in `scratch`
 * (cleared, reused across reads: no set allocated per event).
 */
export function readDistinct(slot: DistinctSlot, lo: number, hi: number, scratch: Set<string>): number {
  const { idx, sets } = slot;
  if (idx.length === 0) return 0;
  if ((idx[0] as number) > lo && (idx[idx.length - 1] as number) <= hi) return slot.refs.size;
  let first = -1;
  let last = -1;
  for (let i = 0; i < idx.length; i++) {
    const b = idx[i] as number;
    if (b <= lo) continue;
    if (b > hi) break;
    if (first < 0) first = i;
    last = i;
  }
  if (first < 0) return 0;
  if (first === last) return (sets[first] as Set<string>).size;
  scratch.clear();
  for (let i = first; i <= last; i++) for (const v of sets[i] as Set<string>) scratch.add(v);
  const n = scratch.size;
  scratch.clear();
  return n;
}

/** The changelog form: [index, [values...], index, [values...], ...], ascending by index. */
export function encodeDistinct(slot: DistinctSlot): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < slot.idx.length; i++) out.push(slot.idx[i], Array.from(slot.sets[i] as Set<string>));
  return out;
}

/** Rebuilds a slot from its changelog form; null when the form is malformed. */
export function decodeDistinct(wire: unknown): DistinctSlot | null {
  if (!Array.isArray(wire) || wire.length % 2 !== 0) return null;
  const slot = emptyDistinct();
  for (let i = 0; i < wire.length; i += 2) {
    const b: unknown = wire[i];
    const values: unknown = wire[i + 1];
    if (typeof b !== 'number' || !Array.isArray(values)) return null;
    if (slot.idx.length > 0 && (slot.idx[slot.idx.length - 1] as number) >= b) return null;
    const set = new Set<string>();
    for (const v of values) {
      if (typeof v !== 'string' || set.has(v)) return null;
      set.add(v);
      slot.refs.set(v, (slot.refs.get(v) ?? 0) + 1);
    }
    slot.idx.push(b);
    slot.sets.push(set);
  }
  return slot;
}
