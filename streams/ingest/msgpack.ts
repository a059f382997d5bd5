/**
 * A strict MessagePack decoder for event values, normalising as it reads.
 *
 * Why not msgpackr's unpack: its defaults hand validation values that depend on how the producer encoded
 * them (uint64/int64 as bigint, timestamps as Date, bin as Buffer), and it reads many application extension
 * types (0x42, 0x62, 0x69, 0x70, 0x72, 0x73, …) as its own private types. No option set gives exactly the
 * contract below, and post-processing would walk every event. Reading the format directly costs no extra pass.
 *
 * The contract (README "Input formats"):
 * - integers of any width become numbers when |v| ≤ 2^53−1, else IntegerRangeError; never rounded;
 * - float32/float64 that are NaN or ±Infinity → NonFiniteNumberError;
 * - the timestamp extension (type −1, 32/64/96-bit) → epoch milliseconds as an integer number, floored
 *   (the sub-millisecond nanoseconds are dropped, towards −∞, so instants before 1970 floor too);
 * - any other extension type, and bin 8/16/32 → UnsupportedValueError;
 * - map keys: strings, or integers written as their exact decimal string (what Python's json.dumps writes
 *   for int keys); any other key type → UnsupportedValueError; a repeated key: the last one wins, as JSON.parse;
 * - str must be valid UTF-8 (never replaced by U+FFFD); trailing bytes after the value are malformed.
 * Every error names the field path.
 *
 * The decoder keeps its cursor in module state: it is synchronous and never calls out, so it cannot re-enter.
 */
import { isUtf8 } from 'node:buffer';
import { DecodeError, IntegerRangeError, NonFiniteNumberError, UnsupportedValueError } from '../../core/errors.js';

/** Deeper nesting is refused rather than risking the stack: no real event comes near it. */
export const MAX_DEPTH = 256;
const TWO_32 = 4294967296;
const EMPTY = Buffer.alloc(0);

let buf: Buffer = EMPTY;
let view: DataView = new DataView(EMPTY.buffer);
let pos = 0;
// The whole value as Latin-1, made once per record: an ASCII string is then a slice of it, which is much
// cheaper than a native decode call per string (there are ~30 in a typical event).
let latin1 = '';

/** A failure deep in the value; containers add their key on the way out so the error names the field. */
class Fault extends Error {
  readonly path: Array<string | number> = [];
  constructor(readonly Kind: typeof DecodeError, message: string) {
    super(message);
  }
}

export function formatPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out === '' ? '(root)' : out;
}

export function decodeMsgpack(value: Buffer): Record<string, unknown> {
  const first = value[0] as number;
  if (!((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) {
    throw new DecodeError(`value is not a MessagePack map (an event), it starts with ${describe(first)}`);
  }
  buf = value;
  view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  pos = 0;
  latin1 = value.toString('latin1');
  try {
    const decoded = read(0) as Record<string, unknown>;
    if (pos !== value.length) throw new Fault(DecodeError, `${value.length - pos} bytes after the end of the value`);
    return decoded;
  } catch (err) {
    if (!(err instanceof Fault)) throw err;
    const where = err.path.length === 0 ? '' : ` at ${formatPath(err.path)}`;
    throw new err.Kind(`MessagePack value${where}: ${err.message}`, { details: { format: 'msgpack', path: formatPath(err.path) } });
  } finally {
    buf = EMPTY; // do not keep the record alive
    latin1 = '';
  }
}

function need(n: number): void {
  if (buf.length - pos < n) throw new Fault(DecodeError, 'unexpected end of data');
}

function read(depth: number): unknown {
  need(1);
  const t = buf[pos++] as number;
  if (t < 0x80) return t;
  if (t < 0x90) return readMap(t & 0x0f, depth);
  if (t < 0xa0) return readArray(t & 0x0f, depth);
  if (t < 0xc0) return readStr(t & 0x1f);
  if (t >= 0xe0) return t - 0x100;
  switch (t) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: case 0xc5: case 0xc6:
      throw new Fault(UnsupportedValueError, 'binary (bin) values have no JSON counterpart; send text, or base64 in a string');
    case 0xc7: return readExt(u8());
    case 0xc8: return readExt(u16());
    case 0xc9: return readExt(u32());
    case 0xca: need(4); pos += 4; return finite(view.getFloat32(pos - 4));
    case 0xcb: need(8); pos += 8; return finite(view.getFloat64(pos - 8));
    case 0xcc: return u8();
    case 0xcd: return u16();
    case 0xce: return u32();
    case 0xcf: return uint64();
    case 0xd0: need(1); return view.getInt8(pos++);
    case 0xd1: need(2); pos += 2; return view.getInt16(pos - 2);
    case 0xd2: need(4); pos += 4; return view.getInt32(pos - 4);
    case 0xd3: return int64();
    case 0xd4: return readExt(1);
    case 0xd5: return readExt(2);
    case 0xd6: return readExt(4);
    case 0xd7: return readExt(8);
    case 0xd8: return readExt(16);
    case 0xd9: return readStr(u8());
    case 0xda: return readStr(u16());
    case 0xdb: return readStr(u32());
    case 0xdc: return readArray(u16(), depth);
    case 0xdd: return readArray(u32(), depth);
    case 0xde: return readMap(u16(), depth);
    case 0xdf: return readMap(u32(), depth);
    default: throw new Fault(DecodeError, 'byte 0xc1 is never used in MessagePack');
  }
}

function u8(): number {
  need(1);
  return buf[pos++] as number;
}
function u16(): number {
  need(2);
  pos += 2;
  return view.getUint16(pos - 2);
}
function u32(): number {
  need(4);
  pos += 4;
  return view.getUint32(pos - 4);
}

function finite(v: number): number {
  if (Number.isFinite(v)) return v;
  throw new Fault(NonFiniteNumberError, `${v} is not a finite number`);
}

// 64-bit integers are assembled from two 32-bit halves: exact whenever the result is a safe integer, and
// the halves tell whether it is without building a BigInt on the hot path.
function uint64(): number {
  need(8);
  const hi = view.getUint32(pos);
  const lo = view.getUint32(pos + 4);
  pos += 8;
  if (hi > 0x1fffff) throw outOfRange(view.getBigUint64(pos - 8));
  return hi * TWO_32 + lo;
}
function int64(): number {
  need(8);
  const v = view.getInt32(pos) * TWO_32 + view.getUint32(pos + 4);
  pos += 8;
  if (!Number.isSafeInteger(v)) throw outOfRange(view.getBigInt64(pos - 8));
  return v;
}
function outOfRange(v: bigint): Fault {
  return new Fault(IntegerRangeError, `integer ${v} is beyond ±(2^53−1) and cannot be held exactly`);
}

function readStr(len: number): string {
  need(len);
  const start = pos;
  const end = (pos += len);
  for (let i = start; i < end; i++) {
    if ((buf[i] as number) >= 0x80) {
      if (!isUtf8(buf.subarray(start, end))) throw new Fault(DecodeError, 'string is not valid UTF-8');
      return buf.toString('utf8', start, end);
    }
  }
  return latin1.slice(start, end);
}

function readArray(len: number, depth: number): unknown[] {
  if (depth >= MAX_DEPTH) throw new Fault(DecodeError, `nested deeper than ${MAX_DEPTH}`);
  if (len > buf.length - pos) throw new Fault(DecodeError, 'unexpected end of data');
  const out = new Array<unknown>(len);
  let i = 0;
  try {
    for (; i < len; i++) out[i] = read(depth + 1);
  } catch (err) {
    if (err instanceof Fault) err.path.unshift(i);
    throw err;
  }
  return out;
}

function readMap(len: number, depth: number): Record<string, unknown> {
  if (depth >= MAX_DEPTH) throw new Fault(DecodeError, `nested deeper than ${MAX_DEPTH}`);
  if (len > (buf.length - pos) / 2) throw new Fault(DecodeError, 'unexpected end of data');
  const out: Record<string, unknown> = {};
  let key: string | undefined;
  try {
    for (let i = 0; i < len; i++) {
      key = undefined;
      key = readKey();
      const v = read(depth + 1);
      // An own property, as JSON.parse makes it: assignment would set the prototype instead.
      if (key === '__proto__') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      else out[key] = v;
    }
  } catch (err) {
    if (err instanceof Fault && key !== undefined) err.path.unshift(key);
    throw err;
  }
  return out;
}

function readKey(): string {
  need(1);
  const t = buf[pos] as number;
  if ((t >= 0xa0 && t < 0xc0) || t === 0xd9 || t === 0xda || t === 0xdb) return read(0) as string;
  if (t < 0x80 || t >= 0xe0 || (t >= 0xcc && t <= 0xce) || (t >= 0xd0 && t <= 0xd2)) return String(read(0));
  // A 64-bit key beyond the safe range is still exact as text.
  if (t === 0xcf || t === 0xd3) {
    need(9);
    pos += 9;
    return String(t === 0xcf ? view.getBigUint64(pos - 8) : view.getBigInt64(pos - 8));
  }
  throw new Fault(UnsupportedValueError, `map key is ${describe(t)}; only string and integer keys are accepted`);
}

function readExt(len: number): number {
  need(1 + len);
  const type = view.getInt8(pos);
  pos += 1 + len;
  if (type !== -1) throw new Fault(UnsupportedValueError, `extension type ${type} is not supported (only the timestamp, −1)`);
  return timestamp(pos - len, len);
}

/** The timestamp extension as epoch milliseconds, floored. */
function timestamp(at: number, len: number): number {
  let seconds: number;
  let nanos = 0;
  if (len === 4) {
    seconds = view.getUint32(at);
  } else if (len === 8) {
    const hi = view.getUint32(at);
    nanos = hi >>> 2;
    seconds = (hi & 0x3) * TWO_32 + view.getUint32(at + 4);
  } else if (len === 12) {
    nanos = view.getUint32(at);
    seconds = view.getInt32(at + 4) * TWO_32 + view.getUint32(at + 8);
    if (!Number.isSafeInteger(seconds)) throw outOfRange(view.getBigInt64(at + 4));
  } else {
    throw new Fault(DecodeError, `a timestamp extension has 4, 8 or 12 bytes, not ${len}`);
  }
  if (nanos > 999_999_999) throw new Fault(DecodeError, `timestamp nanoseconds ${nanos} exceed 999999999`);
  const ms = seconds * 1000 + Math.floor(nanos / 1_000_000);
  if (!Number.isSafeInteger(ms)) throw new Fault(IntegerRangeError, `timestamp of ${seconds} s is beyond ±(2^53−1) milliseconds`);
  return ms;
}

function describe(t: number): string {
  if (t < 0x80 || t >= 0xe0 || (t >= 0xcc && t <= 0xd3)) return 'an integer';
  if (t < 0x90 || t === 0xde || t === 0xdf) return 'a map';
  if (t < 0xa0 || t === 0xdc || t === 0xdd) return 'an array';
  if (t < 0xc0 || (t >= 0xd9 && t <= 0xdb)) return 'a string';
  if (t === 0xc0) return 'nil';
  if (t === 0xc2 || t === 0xc3) return 'a boolean';
  if (t === 0xca || t === 0xcb) return 'a float';
  if (t >= 0xc4 && t <= 0xc6) return 'binary';
  if (t === 0xc1) return 'the never-used byte 0xc1';
  return 'an extension';
}
