/**
 * The depth, fields and string-length limits (`input.limits`, README "Limits") on a JSON value's bytes,
 * checked in one linear pass before JSON.parse builds anything, and stopping at the first limit passed.
 *
 * The pass follows the value's structure without building it: objects and arrays (depth; their members and
 * items are the fields), strings skipped to their closing quote and measured only when their bytes outnumber
 * `maxStringLength` (a JSON string never has more UTF-16 code units than bytes between its quotes: an
 * escape is 2 or 6 bytes for 1 unit, a UTF-8 sequence 1 to 4 bytes for 1 or 2; and never fewer than a sixth
 * of them, so one over 6 × the limit is refused uncounted, "at least" bytes / 6), numbers and literals
 * skipped to their end. Keys as written count as fields: `{"a":1,"a":2}` has two, as it costs JSON.parse two.
 *
 * It judges only what it can count: a value that is not an object, or is malformed (a missing `:` or `,`,
 * an unterminated string), is left to JSON.parse to refuse (the pass stops there), and a value over a limit
 * before its first malformed byte gets the limit's code. It recurses once per level, at most `maxDepth` (≤ 256).
 */
import type { InputLimits } from '../../config/pipeline-schema.js';
import { formatPath } from '../event-path.js';
import { LimitPassed as Passed, nestingTooDeep, stringTooLong, tooManyFields } from './limits.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const LOWER_U = 0x75;

/** Returned by the pass where it stops and leaves the bytes to JSON.parse. */
const MALFORMED = -1;

// The scan in progress (one at a time on a thread: nothing in it yields), so the pass passes only offsets.
const EMPTY = Buffer.alloc(0);
let bytes: Buffer = EMPTY;
let end = 0;
let fields = 0;
let maxDepth = 0;
let maxFields = 0;
let maxStringLength = 0;

/**
 * Throws NestingTooDeepError, TooManyFieldsError or StringTooLongError for the first limit `value` (from
 * `start`, past any byte-order mark) passes; returns when it passes none, or is not a scannable object.
 */
export function scanJson(value: Buffer, start: number, limits: InputLimits): void {
  if (cannotPass(value, start, limits)) return;
  bytes = value;
  end = value.length;
  fields = 0;
  ({ maxDepth, maxFields, maxStringLength } = limits);
  try {
    const i = whitespace(start);
    if (i < end && value[i] === OPEN_BRACE) object(i + 1, 1);
  } catch (err) {
    if (!(err instanceof Passed)) throw err;
    const path = formatPath(err.path);
    // Found by stopping where the limit was passed: at least that many (a string is counted whole, unless very long).
    if (err.limit === 'maxDepth') throw nestingTooDeep('json', maxDepth, err.found, path);
    if (err.limit === 'maxFields') throw tooManyFields('json', maxFields, err.found, path);
    throw stringTooLong('json', maxStringLength, err.found, err.atLeast, path, err.isKey);
  } finally {
    bytes = EMPTY; // do not keep the record alive
  }
}

/**
 * Whether the value is too short to pass any of the three limits, so the pass can be skipped (the usual
 * event, a few hundred bytes). A string has no more UTF-16 code units than its bytes; every field takes two
 * bytes at least (its value's first byte, and a comma or its container's closing bracket), so fields ≤
 * (bytes − 1) / 2; and there are no more levels than `{` and `[` bytes, which native `indexOf` counts.
 */
function cannotPass(value: Buffer, start: number, limits: InputLimits): boolean {
  const length = value.length - start;
  if (length > limits.maxStringLength || length > 2 * limits.maxFields) return false;
  let openers = 0;
  for (const opener of [OPEN_BRACE, OPEN_BRACKET]) {
    for (let i = value.indexOf(opener, start); i !== -1; i = value.indexOf(opener, i + 1)) {
      if (++openers > limits.maxDepth) return false;
    }
  }
  return true;
}

function whitespace(i: number): number {
  const b = bytes;
  while (i < end) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
  return i;
}

/** The value at `i` (whitespace skipped), at `level` if it is a container; the offset after it, or MALFORMED. */
function value(i: number, level: number): number {
  i = whitespace(i);
  if (i >= end) return MALFORMED;
  const c = bytes[i]!;
  if (c === QUOTE) return string(i + 1);
  if (c === OPEN_BRACE) return object(i + 1, level);
  if (c === OPEN_BRACKET) return array(i + 1, level);
  // A number or a literal: to the byte that ends it (JSON.parse judges its spelling).
  const b = bytes;
  while (i < end) {
    const d = b[i]!;
    if (d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) return i;
    i++;
  }
  return i;
}

/** Strings shorter than this are walked byte by byte; a longer one is searched natively for its closing quote. */
const SHORT_STRING = 64;

/** The string whose content starts at `at`; the offset after its closing quote, or MALFORMED. */
function string(at: number): number {
  const b = bytes;
  let j = at;
  let closed = false;
  const walkTo = Math.min(end, at + SHORT_STRING);
  while (j < walkTo) {
    const d = b[j]!;
    if (d === QUOTE) {
      closed = true;
      break;
    }
    j += d === BACKSLASH ? 2 : 1;
  }
  while (!closed && j < end) {
    const q = b.indexOf(QUOTE, j);
    if (q === -1) return MALFORMED;
    // Escaped when an odd run of backslashes precedes it.
    let k = q - 1;
    while (k >= at && b[k] === BACKSLASH) k--;
    closed = (q - 1 - k) % 2 === 0;
    j = closed ? q : q + 1;
  }
  if (!closed || j >= end) return MALFORMED;
  const length = j - at;
  if (length > maxStringLength) {
    // Every code unit takes 6 bytes at most (`\uXXXX`): past 6 × the limit it is refused uncounted.
    const uncounted = length > 6 * maxStringLength;
    const units = uncounted ? Math.ceil(length / 6) : stringUnits(at, j);
    if (units > maxStringLength) throw new Passed('maxStringLength', units, uncounted);
  }
  return j + 1;
}

/** The object whose members start at `at` (after its `{`), at `level`. */
function object(at: number, level: number): number {
  if (level > maxDepth) throw new Passed('maxDepth', level);
  let i = whitespace(at);
  if (i < end && bytes[i] === CLOSE_BRACE) return i + 1;
  let keyAt = i;
  // Where a limit passed: in the key, in the value (under the key), or neither (the object's own count).
  let inKey = false;
  let inValue = false;
  try {
    for (;;) {
      if (i >= end || bytes[i] !== QUOTE) return MALFORMED;
      keyAt = i;
      inKey = true;
      i = string(i + 1);
      inKey = false;
      if (i === MALFORMED) return MALFORMED;
      i = whitespace(i);
      if (i >= end || bytes[i] !== COLON) return MALFORMED;
      if (++fields > maxFields) throw new Passed('maxFields', fields);
      inValue = true;
      i = value(i + 1, level + 1);
      inValue = false;
      if (i === MALFORMED) return MALFORMED;
      i = whitespace(i);
      if (i >= end) return MALFORMED;
      const c = bytes[i]!;
      if (c === CLOSE_BRACE) return i + 1;
      if (c !== COMMA) return MALFORMED;
      i = whitespace(i + 1);
    }
  } catch (err) {
    if (err instanceof Passed) {
      if (inKey) err.isKey = true;
      else if (inValue) err.path.unshift(keyText(keyAt));
    }
    throw err;
  }
}

/** The array whose items start at `at` (after its `[`), at `level`. */
function array(at: number, level: number): number {
  if (level > maxDepth) throw new Passed('maxDepth', level);
  let i = whitespace(at);
  if (i < end && bytes[i] === CLOSE_BRACKET) return i + 1;
  let k = 0;
  // Whether a limit passed in an item (under its index), or in the array's own count.
  let inItem = false;
  try {
    for (;; k++) {
      if (++fields > maxFields) throw new Passed('maxFields', fields);
      inItem = true;
      i = value(i, level + 1);
      inItem = false;
      if (i === MALFORMED) return MALFORMED;
      i = whitespace(i);
      if (i >= end) return MALFORMED;
      const c = bytes[i]!;
      if (c === CLOSE_BRACKET) return i + 1;
      if (c !== COMMA) return MALFORMED;
      i++;
    }
  } catch (err) {
    if (err instanceof Passed && inItem) err.path.unshift(k);
    throw err;
  }
}

/** UTF-16 code units of a JSON string's bytes between its quotes, escapes decoded (exact for valid UTF-8). */
function stringUnits(from: number, to: number): number {
  const raw = bytes.subarray(from, to);
  // Decoded natively; each escape then stands for one unit, not its 2 or 6 characters.
  let units = raw.toString('utf8').length;
  for (let k = raw.indexOf(BACKSLASH); k !== -1; k = raw.indexOf(BACKSLASH, k)) {
    const unicode = raw[k + 1] === LOWER_U;
    units -= unicode ? 5 : 1;
    k += unicode ? 6 : 2;
  }
  return units;
}

/** The key whose opening quote is at `at`, as JSON.parse reads it (escapes decoded); only when throwing. */
function keyText(at: number): string {
  const next = string(at + 1);
  if (next === MALFORMED) return bytes.toString('utf8', at + 1, end);
  if (bytes.subarray(at, next).indexOf(BACKSLASH) === -1) return bytes.toString('utf8', at + 1, next - 1);
  const raw = bytes.toString('utf8', at, next);
  try {
    return JSON.parse(raw) as string;
  } catch {
    return raw; // a malformed escape: JSON.parse refuses the value anyway
  }
}
