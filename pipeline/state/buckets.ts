/**
 * Bucketed windows over event time: the bucket arithmetic every windowed aggregate shares, and the numeric
 * aggregates (count, sum, mean, min, max) kept in them.
 *
 * A window of W ms in buckets of B ms keeps n = W / B buckets. The bucket of time x is floor(x / B) (IEEE
 * division, then floor). Read at time t, the window covers bucket indices (floor(t / B) - n, floor(t / B)].
 * A key retains only buckets with index > floor((maxTs - allowedLateness) / B) - n (`retentionFloor`):
 * no event that is still applied can write below it, and no read at an applied time can reach below it.
 * Buckets are dropped as soon as maxTs moves the floor, so "retained" is exact at every moment (a late
 * event's read, and the distinct bound, see exactly those).
 *
 * A numeric window's per-key state is one flat array, ascending by bucket index, `stride` numbers per bucket:
 * [index, ...values]. One array per key and aggregate: no object per bucket, and it is the changelog's form
 * as is. Values per op: count [n], sum [sum], mean [n, sum], min [min], max [max].
 */
import type { StateValue } from './types.js';

/** The bucket geometry of one windowed aggregate. */
export interface Window {
  /** Bucket length, ms. */
  readonly bucketMs: number;
  /** Buckets in the window (windowMs / bucketMs). */
  readonly n: number;
  /** The state's allowed lateness, ms. */
  readonly latenessMs: number;
}

export function makeWindow(windowMs: number, bucketMs: number, latenessMs: number): Window {
  return { bucketMs, n: Math.round(windowMs / bucketMs), latenessMs };
}

/** The bucket index of time x (ms). */
export function bucketOf(w: Window, x: number): number {
  return Math.floor(x / w.bucketMs);
}

/** Buckets with an index at or below this are dropped once the key's greatest event time is maxTs. */
export function retentionFloor(w: Window, maxTs: number): number {
  return Math.floor((maxTs - w.latenessMs) / w.bucketMs) - w.n;
}

/** The lowest bucket index excluded from a read at t (the window's open lower bound), given retention. */
export function windowLow(w: Window, t: number, maxTs: number): number {
  return Math.max(bucketOf(w, t) - w.n, retentionFloor(w, maxTs));
}

/**
 * The position in `data` (stride `stride`, ascending by index) of bucket `idx`, inserting a fresh one
 * (index then `stride - 1` copies of `init`) where it belongs. Appending is the common case: scan from the end.
 */
export function bucketPosition(data: number[], stride: number, idx: number, init: number): number {
  let pos = data.length;
  while (pos > 0 && (data[pos - stride] as number) > idx) pos -= stride;
  if (pos > 0 && data[pos - stride] === idx) return pos - stride;
  if (pos === data.length) {
    data.push(idx);
    for (let i = 1; i < stride; i++) data.push(init);
  } else {
    // An out-of-order event opening an older bucket: rare, so the splice's allocation does not matter.
    const fresh: number[] = [idx];
    for (let i = 1; i < stride; i++) fresh.push(init);
    data.splice(pos, 0, ...fresh);
  }
  return pos;
}

/** Drops the leading buckets with index <= floor (in place: no array allocated, unlike splice). */
export function dropThrough(data: number[], stride: number, floor: number): void {
  let k = 0;
  while (k < data.length && (data[k] as number) <= floor) k += stride;
  if (k > 0) shiftOut(data, k);
}

/** Removes the first k elements of an array in place (a plain loop: V8's copyWithin on arrays is a slow generic path). */
export function shiftOut<T>(data: T[], k: number): void {
  const n = data.length - k;
  for (let i = 0; i < n; i++) data[i] = data[i + k] as T;
  data.length = n;
}

export type NumericOp = 'count' | 'sum' | 'mean' | 'min' | 'max';

/** Numbers per bucket, index included. */
export function strideOf(op: NumericOp): number {
  return op === 'mean' ? 3 : 2;
}

/**
 * Adds one accepted value to bucket `idx` (count: the value is ignored; the others: a finite number).
 * A -0 is added as 0: the changelog's MessagePack cannot keep a zero's sign.
 */
export function addNumeric(op: NumericOp, data: number[], idx: number, v: number): void {
  const stride = strideOf(op);
  switch (op) {
    case 'count': {
      const p = bucketPosition(data, stride, idx, 0);
      data[p + 1] = (data[p + 1] as number) + 1;
      return;
    }
    case 'sum': {
      const p = bucketPosition(data, stride, idx, 0);
      data[p + 1] = (data[p + 1] as number) + v;
      return;
    }
    case 'mean': {
      const p = bucketPosition(data, stride, idx, 0);
      data[p + 1] = (data[p + 1] as number) + 1;
      data[p + 2] = (data[p + 2] as number) + v;
      return;
    }
    case 'min': {
      const x = v + 0;
      const p = bucketPosition(data, stride, idx, x);
      if (x < (data[p + 1] as number)) data[p + 1] = x;
      return;
    }
    case 'max': {
      const x = v + 0;
      const p = bucketPosition(data, stride, idx, x);
      if (x > (data[p + 1] as number)) data[p + 1] = x;
      return;
    }
  }
}

/**
 * The window's value over buckets with lo < index <= hi, in ascending index: count and sum add bucket
 * values in that order from 0; mean is that sum over that count (null when 0); min and max are null when
 * no bucket is in range.
 */
export function readNumeric(op: NumericOp, data: number[], lo: number, hi: number): StateValue {
  const stride = strideOf(op);
  let acc = 0;
  let n = 0;
  let seen = false;
  for (let p = 0; p < data.length; p += stride) {
    const idx = data[p] as number;
    if (idx <= lo) continue;
    if (idx > hi) break;
    const a = data[p + 1] as number;
    switch (op) {
      case 'count':
      case 'sum':
        acc += a;
        break;
      case 'mean':
        n += a;
        acc += data[p + 2] as number;
        break;
      case 'min':
        if (!seen || a < acc) acc = a;
        break;
      case 'max':
        if (!seen || a > acc) acc = a;
        break;
    }
    seen = true;
  }
  if (op === 'mean') return n === 0 ? null : acc / n;
  if (op === 'min' || op === 'max') return seen ? acc : null;
  return acc;
}

/**
 * The changelog form of a numeric slot: its numbers as float64 little-endian bytes (a MessagePack bin):
 * 8 bytes a number, packed in one copy instead of one MessagePack number at a time.
 */
export function encodeNumeric(data: readonly number[]): Uint8Array {
  if (LITTLE_ENDIAN) {
    // A view into a shared scratch buffer: allocating an ArrayBuffer per slot cost more than the packing.
    // Valid until the next `startEncoding` (the caller packs it before then; MessagePack copies it).
    if (cursor + data.length > scratch.length) {
      scratch = new Float64Array(Math.max(2 * scratch.length, data.length));
      cursor = 0;
    }
    for (let i = 0; i < data.length; i++) scratch[cursor + i] = data[i] as number;
    const view = new Uint8Array(scratch.buffer, cursor * 8, data.length * 8);
    cursor += data.length;
    return view;
  }
  const bytes = new Uint8Array(data.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat64(i * 8, data[i] as number, true);
  return bytes;
}

// A Float64Array's bytes are the platform's order: little-endian on every platform Node runs on today.
const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;
let scratch = new Float64Array(4096);
let cursor = 0;

/** Starts encoding one key's state: `encodeNumeric`'s earlier views may be overwritten from now on. */
export function startEncoding(): void {
  cursor = 0;
}

/** A numeric slot from its changelog form; undefined unless whole buckets with ascending integer indices. */
export function decodeNumeric(wire: unknown, stride: number): number[] | undefined {
  if (!(wire instanceof Uint8Array) || wire.byteLength % (8 * stride) !== 0) return undefined;
  const view = new DataView(wire.buffer, wire.byteOffset, wire.byteLength);
  const data = new Array<number>(wire.byteLength / 8);
  for (let i = 0; i < data.length; i++) {
    const x = view.getFloat64(i * 8, true);
    if (i % stride === 0 && (!Number.isInteger(x) || (i > 0 && (data[i - stride] as number) >= x))) return undefined;
    data[i] = x;
  }
  return data;
}
