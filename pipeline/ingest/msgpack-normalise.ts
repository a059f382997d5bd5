/**
 * MessagePack event values, read by msgpackr and then normalised so that validation sees the same value
 * however the producer encoded it (README "Input formats").
 *
 * msgpackr reads the bytes. What it returns that has no JSON counterpart is normalised by one pass over the
 * decoded value, which only writes where something changes:
 * - uint64/int64 come back as bigint (int64AsType 'bigint', so every 64-bit integer is caught whatever its
 *   value): a number when |v| ≤ 2^53−1, else IntegerRangeError; never rounded;
 * - NaN and ±Infinity floats → NonFiniteNumberError;
 * - bin (a Buffer) → UnsupportedValueError;
 * - a `__proto__` key, which msgpackr renames `__proto_`, becomes an own `__proto__` property again, as
 *   JSON.parse makes it;
 * - a string msgpackr decoded from invalid UTF-8 (it substitutes U+FFFD) → DecodeError.
 * Extensions are decided in msgpackr's extension registry (below): the timestamp (−1) becomes epoch
 * milliseconds; every other type becomes a marker the pass refuses with UnsupportedValueError.
 * Map keys: msgpackr writes integer keys (bigint included) as their exact decimal strings, and float, true,
 * false and nil keys as String(key), which is also what Python's json.dumps writes for them.
 * Every error names the field path.
 */
import { addExtension, Unpackr } from 'msgpackr';
import { MAX_NESTING_DEPTH } from '../../config/pipeline-schema.js';
import { DecodeError, IntegerRangeError, NonFiniteNumberError, UnsupportedValueError } from '../../core/errors.js';
import { formatPath } from '../event-path.js';

/**
 * The decoder's own stack guard: deeper nesting is refused rather than risking the stack. Ingestion never
 * gets here with deeper input: `input.limits.maxDepth`, at most this, is checked on the bytes first.
 */
export const MAX_DEPTH = MAX_NESTING_DEPTH;

// Plain maps (not msgpackr records) and no structured-clone references: input comes from other producers.
// `structures` is ours only to see whether the bytes declared a msgpackr record (fixext 0x72), which msgpackr
// reads even with useRecords false: it is emptied at the start of each unpack.
const structures: object[] = [];
const unpackr = new Unpackr({
  useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', structuredClone: false, moreTypes: false, structures,
});

/** What an extension handler returns for a value that must be refused; the pass throws it with its path. */
class Refused {
  constructor(readonly Kind: typeof DecodeError, readonly message: string) {}
}

/**
 * msgpackr's extension registry is process-wide; Verdict reads MessagePack only here. Its built-in readers
 * are replaced because a foreign producer's types would otherwise be read as msgpackr's private ones: 0x42
 * as a BigInt (indistinguishable from a uint64), 0x62 re-positions the reader, 0x65/0x73/0x74/0x78 build
 * Error/Set/typed-array/RegExp objects, 0 is undefined. Its timestamp reader truncates towards zero (−0.5 ms
 * becomes 0 rather than −1), rounds 999999999 ns up to the next second, ignores byte 5 of the 96-bit seconds
 * and accepts nanoseconds above 999999999, so the timestamp is read here from its 4, 8 or 12 bytes.
 */
for (let type = 0; type < 0xff; type++) {
  const name = type < 0x80 ? String(type) : String(type - 0x100);
  const refused = new Refused(UnsupportedValueError, `extension type ${name} is not supported (only the timestamp, −1)`);
  addExtension({ type, unpack: () => refused });
}
addExtension({ type: 0xff, unpack: timestamp });

const TWO_32 = 4294967296;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The timestamp extension as epoch milliseconds, floored (towards −∞, so instants before 1970 floor too). */
function timestamp(data: Uint8Array): number | Refused {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let seconds: number;
  let nanos = 0;
  if (data.length === 4) {
    seconds = view.getUint32(0);
  } else if (data.length === 8) {
    const hi = view.getUint32(0);
    nanos = hi >>> 2;
    seconds = (hi & 0x3) * TWO_32 + view.getUint32(4);
  } else if (data.length === 12) {
    nanos = view.getUint32(0);
    const s = view.getBigInt64(4);
    if (s > MAX_SAFE || s < -MAX_SAFE) return new Refused(IntegerRangeError, `timestamp of ${s} s is beyond ±(2^53−1) milliseconds`);
    seconds = Number(s);
  } else {
    return new Refused(DecodeError, `a timestamp extension has 4, 8 or 12 bytes, not ${data.length}`);
  }
  if (nanos > 999_999_999) return new Refused(DecodeError, `timestamp nanoseconds ${nanos} exceed 999999999`);
  const ms = seconds * 1000 + Math.floor(nanos / 1_000_000);
  if (!Number.isSafeInteger(ms)) return new Refused(IntegerRangeError, `timestamp of ${seconds} s is beyond ±(2^53−1) milliseconds`);
  return ms;
}

/** A failure deep in the value; containers add their key on the way out so the error names the field. */
class Fault extends Error {
  readonly path: Array<string | number> = [];
  constructor(readonly Kind: typeof DecodeError, message: string) {
    super(message);
  }
}

// The record being normalised, for the two checks that need its bytes (rare: see replaced() and protoKey()).
const EMPTY = Buffer.alloc(0);
let bytes: Buffer = EMPTY;
let replacementsSeen = 0;
let replacementsInBytes = -1;

export function decodeMsgpack(value: Buffer): Record<string, unknown> {
  const first = value[0] as number;
  if (!((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) {
    throw new DecodeError('value is not a MessagePack map (an event)', { details: { format: 'msgpack' } });
  }
  let decoded: Record<string, unknown>;
  try {
    decoded = unpackr.unpack(value) as Record<string, unknown>;
  } catch (err) {
    throw new DecodeError(`value is not valid MessagePack: ${(err as Error).message}`, { cause: err, details: { format: 'msgpack' } });
  }
  if (structures.length !== 0) {
    throw new UnsupportedValueError('MessagePack value: extension type 114 (a msgpackr record) is not supported', {
      details: { format: 'msgpack', path: '(root)' },
    });
  }
  bytes = value;
  replacementsSeen = 0;
  replacementsInBytes = -1;
  try {
    walkObject(decoded, 0);
    return decoded;
  } catch (err) {
    if (!(err instanceof Fault)) throw err;
    const where = err.path.length === 0 ? '' : ` at ${formatPath(err.path)}`;
    throw new err.Kind(`MessagePack value${where}: ${err.message}`, { details: { format: 'msgpack', path: formatPath(err.path) } });
  } finally {
    bytes = EMPTY; // do not keep the record alive
  }
}

/** Returns the value to store in place of v (v itself when nothing changes). Strings, booleans and null are not passed. */
function normalise(v: unknown, depth: number): unknown {
  switch (typeof v) {
    case 'number':
      if (Number.isFinite(v)) return v;
      throw new Fault(NonFiniteNumberError, `${v} is not a finite number`);
    case 'bigint':
      if (v <= MAX_SAFE && v >= -MAX_SAFE) return Number(v);
      throw new Fault(IntegerRangeError, `integer ${v} is beyond ±(2^53−1) and cannot be held exactly`);
    case 'object': {
      if (depth >= MAX_DEPTH) throw new Fault(DecodeError, `nested deeper than ${MAX_DEPTH}`);
      if (Array.isArray(v)) return walkArray(v, depth + 1);
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto === Object.prototype) return walkObject(v as Record<string, unknown>, depth + 1);
      if (v instanceof Refused) throw new Fault(v.Kind, v.message);
      if (v instanceof Uint8Array) {
        throw new Fault(UnsupportedValueError, 'binary (bin) values have no JSON counterpart; send text, or base64 in a string');
      }
      throw new Fault(DecodeError, `unexpected ${(v as object).constructor?.name ?? 'object'} (byte 0xc1 is never used in MessagePack)`);
    }
    default:
      throw new Fault(UnsupportedValueError, `a value of type ${typeof v} has no JSON counterpart`);
  }
}

function walkArray(a: unknown[], depth: number): unknown[] {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (typeof x === 'string') {
      if (x.includes('\uFFFD')) replaced(x, i);
      continue;
    }
    if (x === null || typeof x === 'boolean') continue;
    try {
      const y = normalise(x, depth);
      if (y !== x) a[i] = y;
    } catch (err) {
      if (err instanceof Fault) err.path.unshift(i);
      throw err;
    }
  }
  return a;
}

function walkObject(o: Record<string, unknown>, depth: number): Record<string, unknown> {
  for (const k in o) {
    const x = o[k];
    if (k.includes('\uFFFD')) replaced(k, k);
    if (typeof x === 'string') {
      if (x.includes('\uFFFD')) replaced(x, k);
    } else if (x !== null && typeof x !== 'boolean') {
      try {
        const y = normalise(x, depth);
        if (y !== x) o[k] = y;
      } catch (err) {
        if (err instanceof Fault) err.path.unshift(k);
        throw err;
      }
    }
    if (k === '__proto_') protoKey(o);
  }
  return o;
}

const REPLACEMENT = Buffer.from('\uFFFD');

/**
 * msgpackr decodes invalid UTF-8 to U+FFFD without a word. A U+FFFD the producer really sent is the bytes
 * EF BF BD, so more U+FFFD in the strings than EF BF BD in the record means bytes were replaced.
 */
function replaced(s: string, at: string | number): void {
  for (let i = s.indexOf('\uFFFD'); i !== -1; i = s.indexOf('\uFFFD', i + 1)) replacementsSeen++;
  if (replacementsInBytes === -1) {
    replacementsInBytes = 0;
    for (let i = bytes.indexOf(REPLACEMENT); i !== -1; i = bytes.indexOf(REPLACEMENT, i + 3)) replacementsInBytes++;
  }
  if (replacementsSeen > replacementsInBytes) {
    const fault = new Fault(DecodeError, 'string is not valid UTF-8');
    fault.path.push(at);
    throw fault;
  }
}

const PROTO = Buffer.from('__proto__');
const PROTO_8 = [Buffer.from('\xa8__proto_', 'latin1'), Buffer.from('\xd9\x08__proto_', 'latin1')];

/**
 * msgpackr renames a `__proto__` key `__proto_` (so that it cannot set the prototype). The bytes tell which
 * key the producer sent; it becomes an own property as JSON.parse makes it. If the record holds both
 * spellings the two were merged by msgpackr, and the event cannot be rebuilt: it is refused.
 */
function protoKey(o: Record<string, unknown>): void {
  if (bytes.indexOf(PROTO) === -1) return; // a genuine `__proto_` key
  if (PROTO_8.some((b) => bytes.indexOf(b) !== -1)) {
    const fault = new Fault(UnsupportedValueError, 'both `__proto__` and `__proto_` keys: msgpackr merges them');
    fault.path.push('__proto_');
    throw fault;
  }
  const value = o['__proto_'];
  delete o['__proto_'];
  Object.defineProperty(o, '__proto__', { value, enumerable: true, writable: true, configurable: true });
}
