/**
 * The per-record input limits (`input.limits`, README "Limits"): each one at its maximum (decoded exactly as
 * without limits) and one past it (refused with its own code and details), in JSON and MessagePack, on
 * record bytes (`decodeRecord`) and on the API's event objects (`checkEventLimits`); the record size checked
 * before anything decodes, and a string or map refused from its MessagePack header.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pack, Unpackr } from 'msgpackr';
import {
  DecodeError, NestingTooDeepError, RecordTooLargeError, StringTooLongError, TooManyFieldsError, VerdictError,
} from '../core/errors.js';
import { DEFAULT_INPUT_LIMITS, inputLimitsSchema, pipelineFileSchema, type InputLimits } from '../config/pipeline-schema.js';
import { decodeRecord, decodeValue, type WireFormat } from '../pipeline/ingest/decode.js';
import { checkEventLimits, recordBytes } from '../pipeline/ingest/limits.js';
import type { RecordHeader } from '../pipeline/record.js';

const LIMITS: InputLimits = { maxRecordBytes: 4096, maxDepth: 4, maxFields: 10, maxStringLength: 8 };
const FORMATS = ['json', 'msgpack'] as const;

function encode(format: 'json' | 'msgpack', event: unknown): Buffer {
  return format === 'json' ? Buffer.from(JSON.stringify(event)) : pack(event);
}

function record(value: Buffer | null, key: Buffer | null = null, headers: RecordHeader[] = []) {
  return { key, value, headers };
}

/** The error `fn` throws (a failure if it returns). */
function thrown(fn: () => unknown): VerdictError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof VerdictError, `a VerdictError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a refusal');
}

/** The event decoded within `limits`, checked to be exactly what the decoder alone makes of the bytes. */
function accepted(value: Buffer, format: WireFormat, limits: InputLimits = LIMITS): Record<string, unknown> {
  const event = decodeRecord(record(value), format, limits);
  assert.deepEqual(event, decodeValue(value, format));
  return event;
}

/** An event `depth` levels deep (itself level 1), through objects or arrays. */
function nested(depth: number, via: 'object' | 'array'): Record<string, unknown> {
  let inner: unknown = via === 'object' ? {} : [];
  for (let d = depth - 1; d > 1; d--) inner = via === 'object' ? { x: inner } : [inner];
  return depth === 1 ? {} : { x: inner };
}

describe('input limits on record bytes', () => {
  for (const format of FORMATS) {
    for (const via of ['object', 'array'] as const) {
      test(`${format}: nesting through ${via}s at maxDepth is decoded, one level more is INPUT_NESTING_TOO_DEEP`, () => {
        accepted(encode(format, nested(LIMITS.maxDepth, via)), format);
        accepted(encode(format, nested(LIMITS.maxDepth, via)), 'auto');
        const err = thrown(() => decodeRecord(record(encode(format, nested(LIMITS.maxDepth + 1, via))), 'auto', LIMITS));
        assert.equal(err.code, NestingTooDeepError.code);
        assert.deepEqual(err.details, { format, limit: 'maxDepth', max: 4, found: 5, atLeast: true, path: via === 'object' ? 'x.x.x.x' : 'x[0][0][0]' });
      });
    }

    test(`${format}: maxFields keys and items together are decoded, one more is INPUT_TOO_MANY_FIELDS`, () => {
      // 4 keys + 3 items + 2 keys + 1 item = 10.
      const atMax = { a: 1, b: [1, 2, 3], c: { d: 'x', e: [null] }, f: true };
      accepted(encode(format, atMax), format);
      const err = thrown(() => decodeRecord(record(encode(format, { ...atMax, g: 0 })), format, LIMITS));
      assert.equal(err.code, TooManyFieldsError.code);
      assert.equal(err.details['limit'], 'maxFields');
      assert.equal(err.details['max'], 10);
      assert.equal(err.details['atLeast'], true);
      assert.ok((err.details['found'] as number) >= 11);
    });

    test(`${format}: a string of maxStringLength code units is decoded, one more is INPUT_STRING_TOO_LONG naming its field`, () => {
      for (const s of ['abcdefgh', '日本語日本語日本', '😀😀😀😀', '\n\t"\\\u0001é€x']) {
        assert.equal(s.length, 8);
        accepted(encode(format, { id: 'e', deep: { list: [s] } }), format);
      }
      for (const s of ['abcdefghi', '日本語日本語日本語', '😀😀😀😀x', '\n\t"\\\u0001é€xy']) {
        const err = thrown(() => decodeRecord(record(encode(format, { id: 'e', deep: { list: ['ok', s] } })), format, LIMITS));
        assert.equal(err.code, StringTooLongError.code, s);
        assert.equal(err.details['path'], 'deep.list[1]');
        assert.equal(err.details['key'], false);
        assert.equal(err.details['max'], 8);
        // Exact, except MessagePack's 27 bytes of CJK, over 3 × 8: refused from the header, units ≥ 27 / 3.
        assert.equal(err.details['found'], 9, s);
        assert.equal(err.details['atLeast'], format === 'msgpack' && s.startsWith('日'), s);
      }
    });

    test(`${format}: a key longer than maxStringLength is INPUT_STRING_TOO_LONG naming the object that holds it`, () => {
      accepted(encode(format, { id: 'e', device: { abcdefgh: 1 } }), format);
      const err = thrown(() => decodeRecord(record(encode(format, { id: 'e', device: { abcdefghi: 1 } })), format, LIMITS));
      assert.equal(err.code, StringTooLongError.code);
      assert.deepEqual(err.details, { format, limit: 'maxStringLength', max: 8, found: 9, atLeast: false, path: 'device', key: true });
      const atRoot = thrown(() => decodeRecord(record(encode(format, { ['k'.repeat(100)]: 1 })), format, LIMITS));
      assert.equal(atRoot.details['path'], '(root)');
      assert.equal(atRoot.details['key'], true);
    });
  }

  test('deep arrays and deep objects count the same levels, and an empty container is a level', () => {
    for (const format of FORMATS) {
      accepted(encode(format, { a: [[[]]] }), format); // 4 levels
      accepted(encode(format, { a: { b: { c: {} } } }), format);
      accepted(encode(format, { a: [{ b: [] }] }), format);
      for (const over of [{ a: [[[[]]]] }, { a: { b: { c: { d: {} } } } }, { a: [{ b: [{}] }] }, { a: [{ b: [[1]] }] }]) {
        assert.equal(thrown(() => decodeRecord(record(encode(format, over)), format, LIMITS)).code, NestingTooDeepError.code, JSON.stringify(over));
      }
    }
  });

  test('MessagePack: a string or map past its limit is refused from its header, its content never read', () => {
    // A str32 header of 1 MiB followed by bytes that are not UTF-8 at all: only the header is read.
    const hugeString = Buffer.concat([Buffer.from([0x81, 0xa1, 0x73, 0xdb, 0x00, 0x10, 0x00, 0x00]), Buffer.alloc(1 << 20, 0xff)]);
    const s = thrown(() => decodeRecord(record(hugeString), 'msgpack', { ...LIMITS, maxRecordBytes: 2 << 20 }));
    assert.equal(s.code, StringTooLongError.code);
    assert.deepEqual(s.details, { format: 'msgpack', limit: 'maxStringLength', max: 8, found: Math.ceil((1 << 20) / 3), atLeast: true, path: 's', key: false });
    // A map16 declaring 1,000 entries: refused at its header, before any entry, with the declared count.
    const wideMap = Buffer.concat([Buffer.from([0x81, 0xa1, 0x6d, 0xde, 0x03, 0xe8]), Buffer.alloc(2000, 0x00)]);
    const m = thrown(() => decodeRecord(record(wideMap), 'msgpack', LIMITS));
    assert.equal(m.code, TooManyFieldsError.code);
    assert.deepEqual(m.details, { format: 'msgpack', limit: 'maxFields', max: 10, found: 1001, atLeast: true, path: 'm' });
    // Declaring more entries than the bytes left could hold is malformed, as before: msgpackr's error.
    const lying = Buffer.from([0x81, 0xa1, 0x6d, 0xdf, 0xff, 0xff, 0xff, 0xff, 0x00]);
    assert.equal(thrown(() => decodeRecord(record(lying), 'msgpack', LIMITS)).code, DecodeError.code);
  });

  test('the record size counts key, value and header names and values: at maxRecordBytes decoded, one byte more refused before decoding', () => {
    const value = encode('json', { id: 'e' });
    const key = Buffer.from('card-1');
    const name = 'trace-ü'; // 8 bytes in UTF-8, 7 code units
    const fill = LIMITS.maxRecordBytes - value.length - key.length - Buffer.byteLength(name);
    const atMax = record(value, key, [{ key: name, value: Buffer.alloc(fill) }]);
    assert.equal(recordBytes(atMax), LIMITS.maxRecordBytes);
    assert.deepEqual(decodeRecord(atMax, 'json', LIMITS), { id: 'e' });
    const over = record(value, key, [...atMax.headers, { key: 'n', value: null }]); // a 1-byte name, a null value
    const err = thrown(() => decodeRecord(over, 'json', LIMITS));
    assert.equal(err.code, RecordTooLargeError.code);
    assert.deepEqual(err.details, { limit: 'maxRecordBytes', max: 4096, found: 4097, atLeast: false, valueBytes: value.length });
    // The value alone, past the bound, even when it is not an event at all: the size is judged first.
    assert.equal(thrown(() => decodeRecord(record(Buffer.alloc(4097, 0xc1)), 'auto', LIMITS)).code, RecordTooLargeError.code);
  });

  test('a 50 MB value is refused by its size without being parsed or scanned', () => {
    const fiftyMb = 50 * 1024 * 1024;
    const json = Buffer.alloc(fiftyMb, 0x61);
    json.write('{"a":"', 0);
    json.write('"}', fiftyMb - 2);
    // Nested brackets all the way: the scan, had it run, would refuse it as INPUT_NESTING_TOO_DEEP.
    const brackets = Buffer.alloc(fiftyMb, 0x5b);
    brackets.write('{"a":', 0);
    const msgpack = Buffer.concat([Buffer.from([0x81, 0xa1, 0x61, 0xdb]), Buffer.from([0x03, 0x20, 0x00, 0x00]), Buffer.alloc(fiftyMb)]);
    // The spies see a decode when there is one.
    assert.deepEqual(spyOnDecoders(() => {
      decodeRecord(record(encode('json', { a: 1 })), 'auto', DEFAULT_INPUT_LIMITS);
      decodeRecord(record(encode('msgpack', { a: 1 })), 'auto', DEFAULT_INPUT_LIMITS);
    }), { jsonParse: 1, unpack: 1 });
    const counts = spyOnDecoders(() => {
      for (const [value, format] of [[json, 'json'], [brackets, 'auto'], [msgpack, 'msgpack'], [msgpack, 'auto']] as const) {
        const err = thrown(() => decodeRecord(record(value), format, DEFAULT_INPUT_LIMITS));
        assert.equal(err.code, RecordTooLargeError.code);
        assert.equal(err.details['found'], value.length);
        assert.equal(err.details['max'], 1_048_576);
      }
    });
    assert.deepEqual(counts, { jsonParse: 0, unpack: 0 });
    // With the size bound raised past it, the 50 MB string is refused by the pre-scan, still never decoded.
    const raised = { ...DEFAULT_INPUT_LIMITS, maxRecordBytes: 64 * 1024 * 1024 };
    const byScan = spyOnDecoders(() => {
      const j = thrown(() => decodeRecord(record(json), 'json', raised));
      assert.equal(j.code, StringTooLongError.code);
      assert.equal(j.details['found'], Math.ceil((fiftyMb - 8) / 6));
      assert.equal(j.details['atLeast'], true);
      const m = thrown(() => decodeRecord(record(msgpack), 'msgpack', raised));
      assert.equal(m.code, StringTooLongError.code);
      assert.equal(m.details['atLeast'], true);
      assert.equal(thrown(() => decodeRecord(record(brackets), 'auto', raised)).code, NestingTooDeepError.code);
    });
    assert.deepEqual(byScan, { jsonParse: 0, unpack: 0 });
  });

  test('a JSON record too short to pass a limit skips the pre-scan; the densest that can pass one is still refused', () => {
    // Records within maxStringLength bytes and 2 × maxFields bytes: the pre-scan runs only if their `{` and `[`
    // bytes could make more levels than maxDepth. These are at the edge of each bound.
    const roomy = { maxRecordBytes: 4096, maxDepth: 3, maxFields: 10, maxStringLength: 100 };
    accepted(Buffer.from('{"a":[[1]]}'), 'json', roomy); // 3 levels, 3 openers: skipped
    accepted(Buffer.from('{"a":"[[[[[[[[{{{{{{"}'), 'json', roomy); // openers in a string: scanned, 1 level
    assert.equal(thrown(() => decodeRecord(record(Buffer.from('{"a":[[{}]]}')), 'json', roomy)).code, NestingTooDeepError.code);
    // Two bytes per field is the densest: 11 fields in 27 bytes (over 2 × 10), 10 fields in 20 bytes accepted.
    assert.equal(thrown(() => decodeRecord(record(Buffer.from('{"a":[0,0,0,0,0,0,0,0,0,0]}')), 'json', roomy)).code, TooManyFieldsError.code);
    accepted(Buffer.from('{"":[0,0,0,0,0,0,0]}'), 'json', { ...roomy, maxFields: 8 });
    assert.equal(thrown(() => decodeRecord(record(Buffer.from('{"":[0,0,0,0,0,0,0]}')), 'json', { ...roomy, maxFields: 7 })).code, TooManyFieldsError.code);
  });

  test('JSON: long strings with escaped quotes and backslashes anywhere are measured exactly', () => {
    const roomy = { maxRecordBytes: 4096, maxDepth: 4, maxFields: 10, maxStringLength: 100 };
    for (let at = 55; at < 75; at++) {
      for (const escape of ['"', '\\', '\\"', '\u0000', '😀']) {
        const s = 'a'.repeat(at) + escape + 'b'.repeat(10) + '"\\';
        const fits = { k: s.slice(0, 100), after: 'x' };
        assert.deepEqual(decodeRecord(record(encode('json', fits)), 'json', roomy), fits, `${at} ${escape}`);
        const over = s + 'c'.repeat(101 - s.length);
        const err = thrown(() => decodeRecord(record(encode('json', { k: over, after: 'x' })), 'json', roomy));
        assert.deepEqual([err.code, err.details['found'], err.details['path']], [StringTooLongError.code, 101, 'k']);
      }
    }
  });

  test('bytes within the limits keep their own errors: malformed, not an event, not UTF-8', () => {
    for (const [bytes, format] of [
      [Buffer.from('{"a": [1, 2'), 'json'], [Buffer.from('[[[[[[[[[[[[]]]]]]]]]]]]'), 'json'], [Buffer.from('{"a":"\xff"}', 'latin1'), 'json'],
      [Buffer.from([0x82, 0xa1, 0x61]), 'msgpack'], [Buffer.from([0x81, 0xa1, 0x61, 0xc1]), 'msgpack'], [Buffer.from([0x93, 1, 2, 3]), 'auto'],
    ] as const) {
      const limited = thrown(() => decodeRecord(record(bytes), format, LIMITS));
      const alone = thrown(() => decodeValue(bytes, format));
      assert.equal(limited.code, DecodeError.code);
      assert.equal(limited.message, alone.message);
    }
  });

  test('the defaults: an event of the sample size passes, and the decoder alone no longer overflows the stack on deep JSON', () => {
    accepted(encode('json', { id: 'x', s: 's'.repeat(65_536), list: Array.from({ length: 997 }, (_, i) => i) }), 'json', DEFAULT_INPUT_LIMITS);
    assert.equal(thrown(() => decodeRecord(record(encode('json', { s: 's'.repeat(65_537) })), 'json', DEFAULT_INPUT_LIMITS)).code, StringTooLongError.code);
    assert.equal(thrown(() => decodeRecord(record(encode('msgpack', { l: Array.from({ length: 1000 }, () => 0) })), 'msgpack', DEFAULT_INPUT_LIMITS)).code, TooManyFieldsError.code);
    // Without limits (the decoder alone, never ingestion's path), deep JSON was a RangeError; now a DecodeError.
    const deep = Buffer.from(`{"a":${'['.repeat(20_000)}${']'.repeat(20_000)}}`);
    assert.equal(thrown(() => decodeValue(deep, 'json')).code, DecodeError.code);
    assert.equal(thrown(() => decodeRecord(record(deep), 'json', DEFAULT_INPUT_LIMITS)).code, NestingTooDeepError.code);
  });
});

describe('input limits on event objects (the programmatic API)', () => {
  test('each limit at its maximum passes, one past it throws its code with the field', () => {
    checkEventLimits(nested(4, 'object'), LIMITS);
    checkEventLimits(nested(4, 'array'), LIMITS);
    checkEventLimits({ a: 1, b: [1, 2, 3], c: { d: 'abcdefgh', e: [null] }, f: true }, LIMITS);
    const deep = thrown(() => checkEventLimits(nested(5, 'array'), LIMITS));
    assert.deepEqual(deep.details, { format: 'object', limit: 'maxDepth', max: 4, found: 5, atLeast: true, path: 'x[0][0][0]' });
    const wide = thrown(() => checkEventLimits({ a: 1, b: [1, 2, 3], c: { d: 'x', e: [null] }, f: true, g: 0 }, LIMITS));
    assert.equal(wide.code, TooManyFieldsError.code);
    const long = thrown(() => checkEventLimits({ c: { d: ['abcdefghi'] } }, LIMITS));
    assert.deepEqual(long.details, { format: 'object', limit: 'maxStringLength', max: 8, found: 9, atLeast: false, path: 'c.d[0]', key: false });
    const key = thrown(() => checkEventLimits({ c: { abcdefghi: 1 } }, LIMITS));
    assert.deepEqual(key.details, { format: 'object', limit: 'maxStringLength', max: 8, found: 9, atLeast: false, path: 'c', key: true });
  });

  test('a cyclic object is refused as nested too deep; values that are not plain objects or arrays are not walked', () => {
    const cyclic: Record<string, unknown> = { id: 'e' };
    cyclic['self'] = cyclic;
    assert.equal(thrown(() => checkEventLimits(cyclic, LIMITS)).code, NestingTooDeepError.code);
    checkEventLimits({ at: new Date(0), bytes: Buffer.alloc(100), n: 1n }, LIMITS);
    // Not an event at all: validation's to refuse, with INPUT_SCHEMA_MISMATCH.
    for (const notAnEvent of [null, undefined, 'a string longer than eight', 7]) checkEventLimits(notAnEvent as unknown as Record<string, unknown>, LIMITS);
  });
});

describe('input.limits in the pipeline file', () => {
  test('defaults, bounds, and unknown keys', () => {
    assert.deepEqual(inputLimitsSchema.parse({}), { maxRecordBytes: 1_048_576, maxDepth: 32, maxFields: 1_000, maxStringLength: 65_536 });
    assert.deepEqual(DEFAULT_INPUT_LIMITS, inputLimitsSchema.parse({}));
    assert.equal(inputLimitsSchema.safeParse({ maxDepth: 256 }).success, true);
    assert.equal(inputLimitsSchema.safeParse({ maxDepth: 257 }).success, false, 'past the stack guard of every walk');
    assert.equal(inputLimitsSchema.safeParse({ maxFields: 0 }).success, false);
    assert.equal(inputLimitsSchema.safeParse({ maxRecordBytes: 1.5 }).success, false);
    assert.equal(inputLimitsSchema.safeParse({ maxStringLenght: 10 }).success, false, 'a misspelt key is refused');
    const file = pipelineFileSchema.parse({
      pipeline: 'p', schemas: { s: { fields: {} } }, input: { schema: 's', features: {}, limits: { maxDepth: 8 } },
      steps: [{ id: 'a', model: 'm', inputs: {} }], decision: {},
    });
    assert.deepEqual(file.input.limits, { ...DEFAULT_INPUT_LIMITS, maxDepth: 8 });
  });
});

/** Counts JSON.parse and msgpackr unpack calls while `fn` runs. */
function spyOnDecoders(fn: () => void): { jsonParse: number; unpack: number } {
  const counts = { jsonParse: 0, unpack: 0 };
  const parse = Object.getOwnPropertyDescriptor(JSON, 'parse');
  const unpack = Object.getOwnPropertyDescriptor(Unpackr.prototype, 'unpack');
  assert.ok(parse !== undefined && unpack !== undefined);
  const original = { parse: parse.value as (...args: unknown[]) => unknown, unpack: unpack.value as (...args: unknown[]) => unknown };
  Object.defineProperty(JSON, 'parse', {
    ...parse,
    value(...args: unknown[]): unknown {
      counts.jsonParse++;
      return original.parse.apply(JSON, args);
    },
  });
  Object.defineProperty(Unpackr.prototype, 'unpack', {
    ...unpack,
    value(this: Unpackr, ...args: unknown[]): unknown {
      counts.unpack++;
      return original.unpack.apply(this, args);
    },
  });
  try {
    fn();
  } finally {
    Object.defineProperty(JSON, 'parse', parse);
    Object.defineProperty(Unpackr.prototype, 'unpack', unpack);
  }
  return counts;
}
