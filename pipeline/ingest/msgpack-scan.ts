/**
 * The depth, fields and string-length limits (`input.limits`, README "Limits") on a MessagePack value's
 * bytes, checked by walking its type bytes before msgpackr reads anything, and stopping at the first limit
 * passed. MessagePack writes every length in its header, so the walk reads headers only:
 * - a map or array adds its declared count to the fields (a map its keys) before any element is read, so a
 *   header declaring millions of entries is refused by itself (one declaring more than the bytes left could
 *   hold is malformed, msgpackr's to refuse);
 * - a string's byte length bounds its UTF-16 code units (a UTF-8 sequence is 1 to 4 bytes for 1 or 2
 *   units: units ≤ bytes, and units ≥ bytes / 3): one no longer in bytes than `maxStringLength` passes
 *   unread, one over three times it is refused from its header unread ("at least" bytes / 3), and only one
 *   in between is counted, without decoding it. Keys are strings like any other.
 *
 * It judges only what it can count: a value that is not a map, or is malformed (a length running past the
 * end, the never-used byte 0xc1), is left to msgpackr to refuse; bin and extension payloads are skipped
 * (the normaliser refuses or converts them). The walk recurses once per level, at most `maxDepth` (≤ 256).
 */
import { unpack } from 'msgpackr';
import type { InputLimits } from '../../config/pipeline-schema.js';
import { formatPath } from '../event-path.js';
import { LimitPassed as Passed, nestingTooDeep, stringTooLong, tooManyFields } from './limits.js';

/** Returned by the walk for bytes it leaves to msgpackr (truncated, or 0xc1). */
const MALFORMED = -1;

// The scan in progress (one at a time on a thread: nothing in it yields), so the walk passes only offsets.
const EMPTY = Buffer.alloc(0);
let bytes: Buffer = EMPTY;
let end = 0;
let fields = 0;
let maxDepth = 0;
let maxFields = 0;
let maxStringLength = 0;

/**
 * Throws NestingTooDeepError, TooManyFieldsError or StringTooLongError for the first limit `value` passes;
 * returns when it passes none, or is not a scannable map.
 */
export function scanMsgpack(value: Buffer, limits: InputLimits): void {
  const first = value[0];
  if (first === undefined || !((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) return;
  bytes = value;
  end = value.length;
  fields = 0;
  ({ maxDepth, maxFields, maxStringLength } = limits);
  try {
    skip(0, 1);
  } catch (err) {
    if (!(err instanceof Passed)) throw err;
    const path = formatPath(err.path);
    if (err.limit === 'maxDepth') throw nestingTooDeep('msgpack', maxDepth, err.found, path);
    if (err.limit === 'maxFields') throw tooManyFields('msgpack', maxFields, err.found, path);
    throw stringTooLong('msgpack', maxStringLength, err.found, err.atLeast, path, err.isKey);
  } finally {
    bytes = EMPTY; // do not keep the record alive
  }
}

/** A big-endian unsigned length of 1, 2 or 4 bytes at `at`. */
function lengthAt(at: number, size: number): number {
  const b = bytes;
  if (size === 1) return b[at]!;
  if (size === 2) return (b[at]! << 8) | b[at + 1]!;
  return b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}

/** Skips the value at `i`, which is at `level` if it is a container; the offset after it, or MALFORMED. */
function skip(i: number, level: number): number {
  if (i >= end) return MALFORMED;
  const c = bytes[i]!;
  if (c < 0x80 || c >= 0xe0) return i + 1; // fixint
  if (c < 0x90) return container(i + 1, c & 0x0f, true, level);
  if (c < 0xa0) return container(i + 1, c & 0x0f, false, level);
  if (c < 0xc0) return string(i + 1, c & 0x1f);
  switch (c) {
    case 0xc0: case 0xc2: case 0xc3: return i + 1; // nil, false, true
    case 0xc4: case 0xc5: case 0xc6: return sized(i, 1 << (c - 0xc4), 0); // bin 8/16/32
    case 0xc7: case 0xc8: case 0xc9: return sized(i, 1 << (c - 0xc7), 1); // ext 8/16/32, with a type byte
    case 0xca: return fixed(i, 4); // float32
    case 0xcb: return fixed(i, 8); // float64
    case 0xcc: case 0xcd: case 0xce: case 0xcf: return fixed(i, 1 << (c - 0xcc)); // uint 8..64
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: return fixed(i, 1 << (c - 0xd0)); // int 8..64
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return fixed(i, 1 + (1 << (c - 0xd4))); // fixext: type + 1..16
    case 0xd9: case 0xda: case 0xdb: { // str 8/16/32
      const size = 1 << (c - 0xd9);
      return i + 1 + size > end ? MALFORMED : string(i + 1 + size, lengthAt(i + 1, size));
    }
    case 0xdc: case 0xdd: { // array 16/32
      const size = 2 << (c - 0xdc);
      return i + 1 + size > end ? MALFORMED : container(i + 1 + size, lengthAt(i + 1, size), false, level);
    }
    case 0xde: case 0xdf: { // map 16/32
      const size = 2 << (c - 0xde);
      return i + 1 + size > end ? MALFORMED : container(i + 1 + size, lengthAt(i + 1, size), true, level);
    }
    default: return MALFORMED; // 0xc1 is never used
  }
}

function fixed(i: number, payload: number): number {
  const next = i + 1 + payload;
  return next > end ? MALFORMED : next;
}

/** bin or ext: a length of `size` bytes after the type byte, then `extra` bytes (ext's type), then the payload. */
function sized(i: number, size: number, extra: number): number {
  if (i + 1 + size > end) return MALFORMED;
  const next = i + 1 + size + extra + lengthAt(i + 1, size);
  return next > end ? MALFORMED : next;
}

/** A string of `length` UTF-8 bytes from `at`. */
function string(at: number, length: number): number {
  const next = at + length;
  if (next > end) return MALFORMED;
  if (length > maxStringLength) {
    const unread = length > 3 * maxStringLength;
    const units = unread ? Math.ceil(length / 3) : utf16Units(at, next);
    if (units > maxStringLength) throw new Passed('maxStringLength', units, unread);
  }
  return next;
}

/** A map (`count` entries) or array (`count` items) whose elements start at `at`, at `level`. */
function container(at: number, count: number, isMap: boolean, level: number): number {
  if (level > maxDepth) throw new Passed('maxDepth', level, true);
  const elements = isMap ? count * 2 : count;
  if (elements > end - at) return MALFORMED; // each element is a byte at least
  fields += count;
  if (fields > maxFields) throw new Passed('maxFields', fields, true);
  let i = at;
  let k = 0;
  let keyAt = at;
  let inKey = false;
  try {
    if (isMap) {
      for (; k < count; k++) {
        keyAt = i;
        inKey = true;
        i = skip(i, level + 1);
        if (i === MALFORMED) return MALFORMED;
        inKey = false;
        i = skip(i, level + 1);
        if (i === MALFORMED) return MALFORMED;
      }
    } else {
      for (; k < count; k++) {
        i = skip(i, level + 1);
        if (i === MALFORMED) return MALFORMED;
      }
    }
  } catch (err) {
    if (err instanceof Passed) {
      if (!isMap) err.path.unshift(k);
      else if (!inKey) err.path.unshift(keyText(keyAt));
      else if (err.path.length === 0 && err.limit === 'maxStringLength') err.isKey = true;
    }
    throw err;
  }
  return i;
}

/** UTF-16 code units of UTF-8 bytes (exact for valid UTF-8): every byte but a continuation byte, a 4-byte sequence twice. */
function utf16Units(from: number, to: number): number {
  const b = bytes;
  let units = 0;
  for (let k = from; k < to; k++) {
    const c = b[k]!;
    if ((c & 0xc0) !== 0x80) units += c >= 0xf0 ? 2 : 1;
  }
  return units;
}

/** The key at `at` as the decoded event names it (msgpackr writes a non-string key as String(key)); only when throwing. */
function keyText(at: number): string {
  try {
    return String(unpack(bytes.subarray(at, skip(at, 1))));
  } catch {
    return '?';
  }
}
