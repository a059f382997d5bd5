/**
 * Decoding record values: JSON or MessagePack, chosen by configuration or sniffed per record, and normalised
 * so that validation sees the same value however a producer chose to encode it (README "Input formats").
 *
 * - JSON: an optional UTF-8 byte-order mark is skipped; the bytes must be valid UTF-8 (never silently
 *   replaced); an integer literal beyond ±(2^53−1) is refused (JSON.parse would round it) and so is a number
 *   that overflows a double (1e400 → Infinity). A repeated key: the last one wins. `-0` stays −0.
 * - MessagePack: read by msgpackr, normalised in msgpack-normalise.ts.
 * - auto: JSON when the first byte after an optional BOM and JSON whitespace can start a JSON value
 *   (`{ [ " - 0-9 t f n`), MessagePack otherwise; an event in MessagePack is a map, whose first byte
 *   (0x80–0x8f, 0xde, 0xdf) can never start JSON. Errors then name the format that was recognised.
 *
 * Ingestion decodes with `decodeRecord`, which enforces `input.limits` first (README "Limits"): the
 * record's size before anything is read, then depth, fields and string length on the bytes of the format
 * recognised (json-scan.ts, msgpack-scan.ts), and only then the decoder.
 */
import { isUtf8 } from 'node:buffer';
import type { InputLimits } from '../../config/pipeline-schema.js';
import { DecodeError, IntegerRangeError, NonFiniteNumberError } from '../../core/errors.js';
import { formatPath } from '../event-path.js';
import type { InboundRecord } from '../record.js';
import { scanJson } from './json-scan.js';
import { checkRecordSize } from './limits.js';
import { decodeMsgpack, MAX_DEPTH } from './msgpack-normalise.js';
import { scanMsgpack } from './msgpack-scan.js';

export type WireFormat = 'json' | 'msgpack' | 'auto';

const OPEN_BRACE = 0x7b;

/**
 * A record's value as an event, within `limits`: RecordTooLargeError when its key, value and headers exceed
 * `maxRecordBytes` (nothing read); NestingTooDeepError, TooManyFieldsError or StringTooLongError from the
 * pre-scan of the value's bytes (nothing built); else what `decodeValue` returns or throws.
 */
export function decodeRecord(record: Pick<InboundRecord, 'key' | 'value' | 'headers'>, format: WireFormat, limits: InputLimits): Record<string, unknown> {
  checkRecordSize(record, limits);
  return decode(record.value, format, limits);
}

/**
 * The decoder alone, with no limits (tests, and the bench's baseline): ingestion calls `decodeRecord`.
 * Throws DecodeError (no value, malformed, not an event) or its subclasses for values with no exact event.
 */
export function decodeValue(value: Buffer | null, format: WireFormat): Record<string, unknown> {
  return decode(value, format, null);
}

function decode(value: Buffer | null, format: WireFormat, limits: InputLimits | null): Record<string, unknown> {
  if (value === null || value.length === 0) throw new DecodeError('record has no value');
  if (format !== 'msgpack') {
    const start = hasBom(value) ? 3 : 0;
    if (format === 'json' || start !== 0 || value[0] === OPEN_BRACE || startsLikeJson(value)) {
      if (limits !== null) scanJson(value, start, limits);
      return decodeJson(value, start);
    }
  }
  if (limits !== null) scanMsgpack(value, limits);
  return decodeMsgpack(value);
}

function hasBom(b: Buffer): boolean {
  return b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;
}

function startsLikeJson(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number;
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    return c === 0x7b || c === 0x5b || c === 0x22 || c === 0x2d || (c >= 0x30 && c <= 0x39) || c === 0x74 || c === 0x66 || c === 0x6e;
  }
  return true; // only whitespace: JSON's own error ("unexpected end") says it best
}

function decodeJson(value: Buffer, start: number): Record<string, unknown> {
  const bytes = start === 0 ? value : value.subarray(start);
  if (!isUtf8(bytes)) throw new DecodeError('value is not valid JSON: the bytes are not valid UTF-8', { details: { format: 'json' } });
  const text = bytes.toString('utf8');
  let decoded: unknown;
  try {
    decoded = JSON.parse(text);
  } catch (err) {
    throw new DecodeError(`value is not valid JSON: ${(err as Error).message}`, { cause: err, details: { format: 'json' } });
  }
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) {
    const got = Array.isArray(decoded) ? 'an array' : decoded === null ? 'null' : typeof decoded;
    throw new DecodeError(`value must be a JSON object (an event), got ${got}`, { details: { format: 'json' } });
  }
  // JSON.parse has already rounded or overflowed such a literal, so the text is the judge; but only a number
  // beyond ±(2^53−1) can have been, and finding none in the tree is much cheaper than rescanning the text.
  if (hasHugeNumber(decoded, 1)) checkJsonNumbers(text);
  return decoded as Record<string, unknown>;
}

/** `depth`: v's level (the event is 1). Past the decoder's stack guard (as for MessagePack) the value is refused. */
function hasHugeNumber(v: unknown, depth: number): boolean {
  if (typeof v === 'number') return v > Number.MAX_SAFE_INTEGER || v < -Number.MAX_SAFE_INTEGER;
  if (typeof v !== 'object' || v === null) return false;
  if (depth > MAX_DEPTH) throw new DecodeError(`JSON value nested deeper than ${MAX_DEPTH}`, { details: { format: 'json' } });
  if (Array.isArray(v)) {
    for (const item of v) if (hasHugeNumber(item, depth + 1)) return true;
    return false;
  }
  for (const k in v) if (hasHugeNumber((v as Record<string, unknown>)[k], depth + 1)) return true;
  return false;
}

// Strings first, so that digits inside them are consumed whole and never taken for numbers.
const TOKEN = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[{}[\],:]/g;
const INTEGER_LITERAL = /^-?\d+$/;

interface Frame {
  key: string | number;
  readonly isObject: boolean;
  expectKey: boolean;
}

/** Rescans text that JSON.parse accepted, tracking the field path, to find literals a double cannot hold. */
function checkJsonNumbers(text: string): void {
  const stack: Frame[] = [];
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(text); m !== null; m = TOKEN.exec(text)) {
    const tok = m[0];
    const top = stack[stack.length - 1];
    switch (tok) {
      case '{': stack.push({ key: '', isObject: true, expectKey: true }); continue;
      case '[': stack.push({ key: 0, isObject: false, expectKey: false }); continue;
      case '}': case ']': stack.pop(); continue;
      case ':': if (top !== undefined) top.expectKey = false; continue;
      case ',':
        if (top === undefined) continue;
        if (top.isObject) top.expectKey = true;
        else top.key = (top.key as number) + 1;
        continue;
    }
    if (tok.charCodeAt(0) === 0x22) {
      if (top?.isObject === true && top.expectKey) top.key = JSON.parse(tok) as string;
      continue;
    }
    const n = Number(tok);
    const path = () => formatPath(stack.map((f) => f.key));
    if (!Number.isFinite(n)) {
      throw new NonFiniteNumberError(`JSON number ${tok} at ${path()} overflows a double`, { details: { format: 'json', path: path() } });
    }
    if (!Number.isSafeInteger(n) && INTEGER_LITERAL.test(tok)) {
      throw new IntegerRangeError(`JSON integer ${tok} at ${path()} is beyond ±(2^53−1) and cannot be held exactly`, {
        details: { format: 'json', path: path() },
      });
    }
  }
}
