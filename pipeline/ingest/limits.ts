/**
 * The per-record input limits (`input.limits`, config/pipeline-schema.ts; README "Limits"), each refused
 * with its own code before the work it bounds:
 * - the record's size, before anything is decoded (`checkRecordSize`);
 * - nesting depth, number of fields and string length: on the bytes, by a pre-scan that builds nothing
 *   (json-scan.ts, msgpack-scan.ts), or on an event object the programmatic API was given (`checkEventLimits`).
 *
 * Every refusal's details name the limit (`limit`), its configured maximum (`max`), what was found
 * (`found`), whether `found` is only a lower bound (`atLeast`: the scan stops as soon as a limit is passed,
 * or read a length from a header without reading what it counts), the format (`json`, `msgpack`, or
 * `object` for an API event) and, where it is one field, its path.
 */
import type { InputLimits } from '../../config/pipeline-schema.js';
import { NestingTooDeepError, RecordTooLargeError, StringTooLongError, TooManyFieldsError, type ErrorDetails } from '../../core/errors.js';
import { formatPath } from '../event-path.js';
import type { InboundRecord } from '../record.js';

/** Where a value came from: its wire format, or `object` for an event the programmatic API was given. */
export type LimitFormat = 'json' | 'msgpack' | 'object';

const FORMAT_NAME: Readonly<Record<LimitFormat, string>> = { json: 'JSON value', msgpack: 'MessagePack value', object: 'event object' };

/**
 * The bytes a record brings: its key, its value, and every header's name (UTF-8) and value. All of it is
 * held, copied into the dead letter and scanned (the trace-id headers), so all of it counts against the one
 * bound, as the broker's `message.max.bytes` counts the whole record.
 */
export function recordBytes(record: Pick<InboundRecord, 'key' | 'value' | 'headers'>): number {
  let n = (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const h of record.headers) n += Buffer.byteLength(h.key, 'utf8') + (h.value?.length ?? 0);
  return n;
}

/** Throws RecordTooLargeError when the record's key, value and headers together exceed `maxRecordBytes`. */
export function checkRecordSize(record: Pick<InboundRecord, 'key' | 'value' | 'headers'>, limits: InputLimits): void {
  const max = limits.maxRecordBytes;
  // The value alone decides almost every time; headers are summed only when that does not.
  if ((record.value?.length ?? 0) > max || recordBytes(record) > max) {
    const found = recordBytes(record);
    const value = record.value?.length ?? 0;
    throw new RecordTooLargeError(
      `record of ${found} bytes (value ${value}, key and headers ${found - value}) exceeds input.limits.maxRecordBytes ${max}; not decoded`,
      { details: { limit: 'maxRecordBytes', max, found, atLeast: false, valueBytes: value } },
    );
  }
}

function details(format: LimitFormat, limit: keyof InputLimits, max: number, found: number, atLeast: boolean, path: string | undefined): ErrorDetails {
  return { format, limit, max, found, atLeast, ...(path === undefined ? {} : { path }) };
}

const where = (path: string | undefined): string => (path === undefined ? '' : ` at ${path}`);
const count = (found: number, atLeast: boolean): string => (atLeast ? `at least ${found}` : String(found));

/** `depth`: the level of the container that passed `max` (the event itself is level 1); `path`: that container. */
export function nestingTooDeep(format: LimitFormat, max: number, depth: number, path: string): NestingTooDeepError {
  return new NestingTooDeepError(
    `${FORMAT_NAME[format]}${where(path)} is nested ${count(depth, true)} levels deep, over input.limits.maxDepth ${max}`,
    { details: details(format, 'maxDepth', max, depth, true, path) },
  );
}

/** `found`: fields counted when the limit was passed; `path`: the object or array where it was. */
export function tooManyFields(format: LimitFormat, max: number, found: number, path: string): TooManyFieldsError {
  return new TooManyFieldsError(
    `${FORMAT_NAME[format]} has ${count(found, true)} fields (keys and array items; passed${where(path)}), over input.limits.maxFields ${max}`,
    { details: details(format, 'maxFields', max, found, true, path) },
  );
}

/** `path`: the string's field, or for a key the object holding it (`isKey`). */
export function stringTooLong(format: LimitFormat, max: number, found: number, atLeast: boolean, path: string, isKey: boolean): StringTooLongError {
  const what = isKey ? `a key in ${path}` : `the string at ${path}`;
  return new StringTooLongError(
    `${FORMAT_NAME[format]}: ${what} is ${count(found, atLeast)} UTF-16 code units long, over input.limits.maxStringLength ${max}`,
    { details: { ...details(format, 'maxStringLength', max, found, atLeast, path), key: isKey } },
  );
}

/**
 * The depth, fields and string-length limits on an event object (the programmatic API: it has no bytes, so
 * `maxRecordBytes` does not apply; these three bound its size). Walks plain objects and arrays only, and
 * stops at the first limit passed, so a cyclic object is refused as nested too deep. Throws the limit's error;
 * passes anything that is not an object (null, a string), which validation refuses.
 */
export function checkEventLimits(event: Record<string, unknown>, limits: InputLimits): void {
  // The API's callers are not type-checked: what is not an object is the schema's to refuse (INPUT_SCHEMA_MISMATCH).
  if (typeof event !== 'object' || (event as unknown) === null) return;
  const walk = { limits, fields: 0, path: [] as Array<string | number> };
  walkValue(walk, event, 1);
}

interface Walk {
  readonly limits: InputLimits;
  fields: number;
  readonly path: Array<string | number>;
}

function walkValue(w: Walk, v: object, depth: number): void {
  const { maxDepth, maxFields, maxStringLength } = w.limits;
  if (depth > maxDepth) throw nestingTooDeep('object', maxDepth, depth, formatPath(w.path));
  const isArray = Array.isArray(v);
  const keys = isArray ? null : Object.keys(v);
  w.fields += isArray ? v.length : (keys as string[]).length;
  if (w.fields > maxFields) throw tooManyFields('object', maxFields, w.fields, formatPath(w.path));
  const n = isArray ? v.length : (keys as string[]).length;
  for (let i = 0; i < n; i++) {
    const key = isArray ? i : (keys as string[])[i]!;
    if (typeof key === 'string' && key.length > maxStringLength) throw stringTooLong('object', maxStringLength, key.length, false, formatPath(w.path), true);
    const x = (v as Record<string | number, unknown>)[key];
    if (typeof x === 'string') {
      if (x.length > maxStringLength) throw stringTooLong('object', maxStringLength, x.length, false, formatPath([...w.path, key]), false);
    } else if (typeof x === 'object' && x !== null && (Array.isArray(x) || Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null)) {
      w.path.push(key);
      walkValue(w, x, depth + 1);
      w.path.pop();
    }
  }
}

/**
 * A limit passed deep in a value during a byte pre-scan (json-scan.ts, msgpack-scan.ts); each container adds
 * its key or index to `path` on the way out. Never leaves the scan: it becomes the limit's typed error there.
 */
export class LimitPassed extends Error {
  readonly path: Array<string | number> = [];
  /** Set when the refused string is a key (its object or map is then the path). */
  isKey = false;
  constructor(readonly limit: 'maxDepth' | 'maxFields' | 'maxStringLength', readonly found: number, readonly atLeast = true) {
    super(limit);
  }
}
