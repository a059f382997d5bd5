/**
 * The per-record input limits as a property (fast-check): for generated events (nested objects and arrays,
 * Unicode strings and keys, numbers, literals) encoded as JSON and as MessagePack, generated record keys and
 * headers, and generated limits, small (the pre-scan runs) and large (a short record skips it):
 * - a record within every limit decodes exactly as the decoder alone decodes it (value, or error and message);
 * - a record over exactly one limit is refused with exactly that limit's code; over several, with one of theirs;
 * - an event object (the API) passes or is refused by `checkEventLimits` the same way.
 * The reference measures the value itself (depth, fields, longest string in UTF-16 code units).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import type { InputLimits } from '../config/pipeline-schema.js';
import { NestingTooDeepError, RecordTooLargeError, StringTooLongError, TooManyFieldsError, VerdictError } from '../core/errors.js';
import { decodeRecord, decodeValue } from '../pipeline/ingest/decode.js';
import { checkEventLimits, recordBytes } from '../pipeline/ingest/limits.js';
import type { RecordHeader } from '../pipeline/record.js';

const RUNS = 2500;

const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('', 'é€😀', '\n"\\\u0000', '日本語'));
const scalar = fc.oneof(text, fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
const { value } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 6 }),
  object: fc.dictionary(text, tie('value'), { maxKeys: 6 }),
}));
const event = fc.dictionary(text, value, { minKeys: 0, maxKeys: 8 });

const limits = fc.oneof(
  fc.record({ maxRecordBytes: fc.integer({ min: 20, max: 600 }), maxDepth: fc.integer({ min: 1, max: 6 }), maxFields: fc.integer({ min: 1, max: 30 }), maxStringLength: fc.integer({ min: 1, max: 14 }) }),
  // Short records under these skip the JSON pre-scan unless their brackets could pass maxDepth.
  fc.record({ maxRecordBytes: fc.integer({ min: 600, max: 100_000 }), maxDepth: fc.integer({ min: 1, max: 6 }), maxFields: fc.integer({ min: 20, max: 2000 }), maxStringLength: fc.integer({ min: 10, max: 5000 }) }),
  fc.record({ maxRecordBytes: fc.integer({ min: 600, max: 100_000 }), maxDepth: fc.integer({ min: 2, max: 40 }), maxFields: fc.integer({ min: 20, max: 2000 }), maxStringLength: fc.integer({ min: 10, max: 5000 }) }),
);
const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
const header: fc.Arbitrary<RecordHeader> = fc.record({ key: fc.string({ maxLength: 8 }), value: fc.option(bytes, { nil: null }) });
const recordKey = fc.option(bytes, { nil: null });

/** What the value itself measures: levels (the event is 1), keys and items together, the longest string or key. */
function measure(v: unknown, level: number, m: { depth: number; fields: number; longest: number }): void {
  if (typeof v === 'string') {
    m.longest = Math.max(m.longest, v.length);
    return;
  }
  if (typeof v !== 'object' || v === null) return;
  m.depth = Math.max(m.depth, level);
  const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v);
  m.fields += entries.length;
  for (const [k, x] of entries) {
    if (!Array.isArray(v)) m.longest = Math.max(m.longest, k.length);
    measure(x, level + 1, m);
  }
}

/** The codes of the limits an event passes (record size apart). */
function passedCodes(e: Record<string, unknown>, l: InputLimits): string[] {
  const m = { depth: 0, fields: 0, longest: 0 };
  measure(e, 1, m);
  const codes: string[] = [];
  if (m.depth > l.maxDepth) codes.push(NestingTooDeepError.code);
  if (m.fields > l.maxFields) codes.push(TooManyFieldsError.code);
  if (m.longest > l.maxStringLength) codes.push(StringTooLongError.code);
  return codes;
}

type Result = { ok: Record<string, unknown> } | { code: string; message: string };
function outcome(fn: () => Record<string, unknown>): Result {
  try {
    return { ok: fn() };
  } catch (err) {
    if (!(err instanceof VerdictError)) throw err;
    return { code: err.code, message: err.message };
  }
}

describe('input limits, as a property', () => {
  test(`records within the limits decode exactly as before; records over one get exactly its code (${RUNS} runs, JSON and MessagePack each)`, () => {
    const seen = { within: 0, refused: 0, bySize: 0, fastPath: 0 };
    fc.assert(
      fc.property(event, limits, recordKey, fc.array(header, { maxLength: 3 }), (e, l, key, headers) => {
        const expected = passedCodes(e, l);
        for (const value of [Buffer.from(JSON.stringify(e)), pack(e)]) {
          for (const format of value[0] === 0x7b ? (['json', 'auto'] as const) : (['msgpack', 'auto'] as const)) {
            const record = { key, value, headers };
            const got = outcome(() => decodeRecord(record, format, l));
            if (recordBytes(record) > l.maxRecordBytes) {
              assert.equal('code' in got && got.code, RecordTooLargeError.code);
              seen.bySize++;
            } else if (expected.length === 0) {
              assert.deepEqual(got, outcome(() => decodeValue(value, format)));
              seen.within++;
              if (value[0] === 0x7b && value.length <= l.maxStringLength && value.length <= 2 * l.maxFields) seen.fastPath++;
            } else {
              assert.ok('code' in got && expected.includes(got.code), `${JSON.stringify(got)} for ${expected.join(', ')}`);
              if (expected.length === 1) assert.equal('code' in got && got.code, expected[0]);
              seen.refused++;
            }
          }
        }
        // The API's event object: the same three limits, no size.
        const api = outcome(() => {
          checkEventLimits(e, l);
          return e;
        });
        if (expected.length === 0) assert.ok('ok' in api);
        else assert.ok('code' in api && expected.includes(api.code));
        if (expected.length === 1) assert.equal('code' in api && api.code, expected[0]);
      }),
      { numRuns: RUNS, seed: 1307 },
    );
    // Every branch was exercised, not only the easy one.
    assert.ok(seen.within > 500 && seen.refused > 500 && seen.bySize > 100 && seen.fastPath > 100, JSON.stringify(seen));
  });
});
