/**
 * Decoding bytes written by another implementation (Python's msgpack and hand-written JSON, committed under
 * test/fixtures/foreign by make_fixtures.py): each fixture decodes to one exact value or one exact error code.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pack } from 'msgpackr';
import {
  DecodeError, IntegerRangeError, NonFiniteNumberError, UnsupportedValueError, asVerdictError, type VerdictError,
} from '../core/errors.js';
import { decodeValue, type WireFormat } from '../pipeline/ingest/decode.js';
import { MAX_DEPTH } from '../pipeline/ingest/msgpack-normalise.js';

const FOREIGN = join(fileURLToPath(new URL('../../', import.meta.url)), 'test/fixtures/foreign');
const fixture = (name: string): Buffer => readFileSync(join(FOREIGN, name));

function decodeFails(value: Buffer, format: WireFormat): VerdictError {
  try {
    decodeValue(value, format);
  } catch (err) {
    return asVerdictError(err);
  }
  assert.fail('decoding succeeded');
}

/** Both the configured format and sniffing must give the same answer. */
function both(name: string, format: 'json' | 'msgpack'): Array<[WireFormat, Buffer]> {
  return [[format, fixture(name)], ['auto', fixture(name)]];
}

describe('64-bit integers from a conformant MessagePack encoder', () => {
  test('a uint64 ts (the instance) decodes to the number 1700000000000', () => {
    for (const [format, bytes] of both('tx-uint64-ts.msgpack', 'msgpack')) {
      assert.equal(bytes[0x18], 0xcf, 'the fixture really carries a uint64');
      const event = decodeValue(bytes, format);
      assert.equal(event['ts'], 1700000000000);
      assert.deepEqual(event['device'], { id: 'dev-py', is_new: false });
    }
  });

  test('int64 and uint64 within ±(2^53−1) become exact numbers, at any depth', () => {
    assert.equal(decodeValue(fixture('int64-negative.msgpack'), 'msgpack')['v'], -(2 ** 40));
    assert.equal(decodeValue(fixture('int64-min-safe.msgpack'), 'msgpack')['v'], -Number.MAX_SAFE_INTEGER);
    assert.equal(decodeValue(fixture('uint64-max-safe.msgpack'), 'msgpack')['v'], Number.MAX_SAFE_INTEGER);
    assert.deepEqual(decodeValue(fixture('nested-big-ok.msgpack'), 'msgpack'), {
      id: 'a', deep: { list: [1, 2 ** 40, [-(2 ** 50)], { x: Number.MAX_SAFE_INTEGER }] },
    });
  });

  test('integers a number cannot hold exactly are refused with INPUT_INTEGER_OUT_OF_RANGE naming the field', () => {
    const cases: Array<[string, string, string]> = [
      ['uint64-max.msgpack', 'v', '18446744073709551615'],
      ['uint64-2p53.msgpack', 'v', '9007199254740992'],
      ['uint64-2p53-plus-1.msgpack', 'v', '9007199254740993'],
      ['int64-min.msgpack', 'v', '-9223372036854775808'],
      ['nested-big-bad.msgpack', 'deep.list[1][2].x', '1152921504606846976'],
    ];
    for (const [name, path, digits] of cases) {
      const err = decodeFails(fixture(name), 'auto');
      assert.equal(err.code, IntegerRangeError.code, name);
      assert.ok(err instanceof DecodeError, 'a kind of decode failure');
      assert.equal(err.details['path'], path, name);
      assert.ok(err.message.includes(digits), `${name}: ${err.message}`);
    }
  });
});

describe('MessagePack extensions, keys and types with no JSON counterpart', () => {
  test('the timestamp extension becomes epoch milliseconds, floored, in its 32, 64 and 96-bit forms', () => {
    const cases: Array<[string, number, number]> = [
      ['ts32.msgpack', 0xd6, 1700000000000],
      ['ts64-nanos.msgpack', 0xd7, 1700000000123], // 123456789 ns: the sub-millisecond 456789 ns are dropped
      ['ts-datetime.msgpack', 0xd7, 1700000000654], // a Python datetime with 654321 µs
      ['ts96-nanos.msgpack', 0xc7, 17179869184999],
      ['ts96-before-1970.msgpack', 0xc7, -500], // −1 s + 500000001 ns = −499.999999 ms, floored
    ];
    for (const [name, marker, ms] of cases) {
      const bytes = fixture(name);
      assert.equal(bytes[9], marker, `${name} uses the intended form`);
      assert.equal(decodeValue(bytes, 'msgpack')['at'], ms, name);
    }
  });

  test('a timestamp event passes as an integer ts', () => {
    assert.equal(decodeValue(fixture('tx-timestamp-ext.msgpack'), 'auto')['ts'], 1700000000654);
  });

  test('other extension types are refused with INPUT_UNSUPPORTED_TYPE, including those msgpackr reads as its own', () => {
    for (const [name, type] of [['ext-unknown.msgpack', 42], ['ext-0x42.msgpack', 0x42]] as const) {
      const err = decodeFails(fixture(name), 'msgpack');
      assert.equal(err.code, UnsupportedValueError.code);
      assert.equal(err.details['path'], 'blob');
      assert.match(err.message, new RegExp(`extension type ${type} `));
    }
  });

  test('every extension type msgpackr knows as its own is refused too, in each ext form, never read as msgpackr data', () => {
    // {id: 'a', blob: <ext>}: 0 (undefined), 0x42 (BigInt), 0x62 (bundled strings), 0x65 (Error), 0x69/0x70
    // (structured clone), 0x72 (record), 0x73 (Set), 0x74 (typed array), 0x78 (RegExp), and a negative type.
    const head = [0x82, 0xa2, 0x69, 0x64, 0xa1, 0x61, 0xa4, 0x62, 0x6c, 0x6f, 0x62];
    const forms = (type: number): number[][] => [
      [0xd4, type, 0x01], [0xd5, type, 0x01, 0x02], [0xd6, type, 0, 0, 0, 4], [0xc7, 3, type, 0x91, 0xa1, 0x78],
    ];
    for (const type of [0, 0x42, 0x62, 0x65, 0x69, 0x70, 0x72, 0x73, 0x74, 0x78, 0x80]) {
      // msgpackr reads fixext 1 and 2 of type 0x72 as a record definition before any extension reader: below.
      for (const ext of type === 0x72 ? forms(type).slice(2) : forms(type)) {
        const err = decodeFails(Buffer.from([...head, ...ext]), 'msgpack');
        const hex = ext.map((b) => b.toString(16)).join(' ');
        assert.equal(err.code, UnsupportedValueError.code, hex);
        assert.equal(err.details['path'], 'blob', hex);
        assert.match(err.message, new RegExp(`extension type ${type < 0x80 ? type : type - 0x100} `), hex);
      }
    }
    // A record definition that reads as one: refused once msgpackr has built it.
    const record = decodeFails(Buffer.from([...head, 0x91, 0xd4, 0x72, 0x40, 0x91, 0xa1, 0x78, 0x01]), 'msgpack');
    assert.equal(record.code, UnsupportedValueError.code);
    assert.match(record.message, /extension type 114 \(a msgpackr record\)/);
    // One whose following bytes are no record: msgpackr runs out of data.
    const cut = decodeFails(Buffer.from([...head, 0xd4, 0x72, 0x01]), 'msgpack');
    assert.equal(cut.code, DecodeError.code);
    assert.match(cut.message, /^value is not valid MessagePack: Unexpected end/);
  });

  test('timestamps msgpackr would read wrongly are refused: seconds beyond 2^48, nanoseconds beyond 999999999, odd lengths', () => {
    const at = (ext: number[]): Buffer => Buffer.from([0x82, 0xa2, 0x69, 0x64, 0xa1, 0x61, 0xa2, 0x61, 0x74, ...ext]);
    // 2^48 + 5 s: msgpackr ignores the byte that holds 2^48 and would read 5 s (1970-01-01T00:00:05Z).
    const big = decodeFails(at([0xc7, 12, 0xff, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 5]), 'msgpack');
    assert.equal(big.code, IntegerRangeError.code);
    assert.equal(big.details['path'], 'at');
    // 10^9 ns (one full second) in the 96-bit form, and 2^30−1 ns in the 64-bit form.
    for (const ext of [[0xc7, 12, 0xff, 0x3b, 0x9a, 0xca, 0x00, 0, 0, 0, 0, 0, 0, 0, 1], [0xd7, 0xff, 0xff, 0xff, 0xff, 0xfc, 0, 0, 0, 1]]) {
      const err = decodeFails(at(ext), 'msgpack');
      assert.equal(err.code, DecodeError.code);
      assert.match(err.message, /nanoseconds/);
    }
    assert.match(decodeFails(at([0xd5, 0xff, 0, 1]), 'msgpack').message, /4, 8 or 12 bytes/);
    // The largest exact second count still decodes.
    assert.equal(decodeValue(at([0xd7, 0xff, 0, 0, 0, 0x03, 0xff, 0xff, 0xff, 0xff]), 'msgpack')['at'], (2 ** 34 - 1) * 1000);
  });

  test('a `__proto_` key is kept; `__proto__` and `__proto_` in one map are refused, as msgpackr merges them', () => {
    const genuine = Buffer.from([0x82, 0xa2, 0x69, 0x64, 0xa1, 0x61, 0xa8, ...Buffer.from('__proto_'), 0x01]);
    const event = decodeValue(genuine, 'msgpack');
    assert.deepEqual(Object.keys(event), ['id', '__proto_']);
    assert.equal(event['__proto_'], 1);
    const both = Buffer.from([0x83, 0xa2, 0x69, 0x64, 0xa1, 0x61, 0xa9, ...Buffer.from('__proto__'), 0x01, 0xa8, ...Buffer.from('__proto_'), 0x02]);
    const err = decodeFails(both, 'msgpack');
    assert.equal(err.code, UnsupportedValueError.code);
    assert.equal(err.details['path'], '__proto_');
  });

  test('a U+FFFD the producer sent is kept; one msgpackr substituted for invalid UTF-8 is refused, naming the field', () => {
    const ok = Buffer.concat([Buffer.from([0x82, 0xa2, 0x69, 0x64, 0xa1, 0x61, 0xa1, 0x73, 0xa4]), Buffer.from('x\uFFFD')]);
    assert.equal(decodeValue(ok, 'msgpack')['s'], 'x\uFFFD');
    // The same map with a third field t whose string bytes are FF 41: one genuine U+FFFD, then a substituted one.
    const bad = Buffer.concat([Buffer.from([0x83]), ok.subarray(1), Buffer.from([0xa1, 0x74, 0xa2, 0xff, 0x41])]);
    const err = decodeFails(bad, 'msgpack');
    assert.equal(err.code, DecodeError.code);
    assert.equal(err.details['path'], 't');
    assert.match(err.message, /UTF-8/);
  });

  test('the never-used byte 0xc1 is INPUT_DECODE_FAILED', () => {
    assert.equal(decodeFails(Buffer.from([0x81, 0xa1, 0x61, 0xc1]), 'msgpack').code, DecodeError.code);
  });

  test('binary values are refused with INPUT_UNSUPPORTED_TYPE naming the field', () => {
    const err = decodeFails(fixture('bin-value.msgpack'), 'msgpack');
    assert.equal(err.code, UnsupportedValueError.code);
    assert.equal(err.details['path'], 'raw');
  });

  test('integer map keys become their exact decimal strings; a float key its String(), as Python json.dumps writes it', () => {
    assert.deepEqual(decodeValue(fixture('int-keys.msgpack'), 'msgpack'), {
      id: 'a', by_hour: { '0': 1, '13': 2, '-1': 3, '9223372036854775808': 4 },
    });
    // msgpackr turns every scalar key into String(key); it cannot be told apart afterwards, and '1.5' is the
    // key the same producer's JSON would carry.
    assert.deepEqual(decodeValue(fixture('float-key.msgpack'), 'msgpack'), { id: 'a', m: { '1.5': 1 } });
    // A key that is a container has no string form: msgpackr refuses the map.
    const err = decodeFails(Buffer.from([0x82, 0xa2, 0x69, 0x64, 0xa1, 0x61, 0xa1, 0x6d, 0x81, 0x91, 0x01, 0x02]), 'msgpack');
    assert.equal(err.code, DecodeError.code);
  });

  test('NaN and Infinity floats are refused with INPUT_NUMBER_NOT_FINITE', () => {
    for (const name of ['float-nan.msgpack', 'float32-inf.msgpack']) {
      const err = decodeFails(fixture(name), 'msgpack');
      assert.equal(err.code, NonFiniteNumberError.code, name);
      assert.equal(err.details['path'], 'x', name);
    }
  });

  test('-0, a repeated key and a __proto__ key decode as JSON.parse decodes the same event', () => {
    assert.ok(Object.is(decodeValue(fixture('negative-zero.msgpack'), 'msgpack')['x'], -0));
    assert.ok(Object.is(decodeValue(fixture('negative-zero.json'), 'json')['x'], -0));
    assert.deepEqual(decodeValue(fixture('duplicate-key.msgpack'), 'msgpack'), { id: 'a', k: 2 });
    assert.deepEqual(decodeValue(fixture('duplicate-key.json'), 'json'), { id: 'j-8', k: 2 });
    for (const name of ['proto-key.msgpack', 'proto-key.json']) {
      const event = decodeValue(fixture(name), 'auto');
      assert.equal(Object.getPrototypeOf(event), Object.prototype, name);
      assert.deepEqual(Object.getOwnPropertyDescriptor(event, '__proto__')?.value, { polluted: true }, name);
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    }
  });

  test('malformed MessagePack is INPUT_DECODE_FAILED: truncated, trailing bytes, invalid UTF-8, not a map', () => {
    for (const name of ['truncated.msgpack', 'trailing-bytes.msgpack', 'invalid-utf8-str.msgpack', 'array-top.msgpack']) {
      const err = decodeFails(fixture(name), 'msgpack');
      assert.equal(err.code, DecodeError.code, name);
      assert.match(err.message, /MessagePack/, name);
    }
    const deep = Buffer.concat([Buffer.from([0x81, 0xa1, 0x61]), Buffer.alloc(MAX_DEPTH + 1, 0x91), Buffer.from([0x01])]);
    assert.equal(decodeFails(deep, 'msgpack').code, DecodeError.code);
    // A huge declared length is refused before anything is allocated.
    assert.equal(decodeFails(Buffer.from([0x81, 0xa1, 0x61, 0xdd, 0xff, 0xff, 0xff, 0xff]), 'msgpack').code, DecodeError.code);
  });

  test('what msgpackr itself writes still decodes to the same value', () => {
    const event = { id: 'x', n: -12, big: 2 ** 40, f: 0.1, s: 'héllo €', list: [1, 'two', null, true], o: { a: { b: [] } } };
    assert.deepEqual(decodeValue(pack(event), 'msgpack'), event);
  });
});

describe('JSON as real producers write it', () => {
  test('a UTF-8 byte-order mark is skipped, with format json and auto', () => {
    for (const [format, bytes] of both('tx-bom.json', 'json')) {
      const event = decodeValue(bytes, format);
      assert.equal(event['id'], 'j-1');
      assert.equal(event['ts'], 1700000000000);
    }
  });

  test('auto recognises JSON by its first byte after a BOM and whitespace, and reports JSON errors', () => {
    assert.equal(decodeValue(fixture('leading-whitespace.json'), 'auto')['id'], 'j-2');
    for (const name of ['array.json', 'bom-array.json', 'whitespace-array.json', 'string-top.json']) {
      const err = decodeFails(fixture(name), 'auto');
      assert.equal(err.code, DecodeError.code, name);
      assert.match(err.message, /must be a JSON object/, name);
    }
    const malformed = decodeFails(fixture('bom-malformed.json'), 'auto');
    assert.equal(malformed.code, DecodeError.code);
    assert.match(malformed.message, /^value is not valid JSON/);
  });

  test('a number that overflows a double is refused with INPUT_NUMBER_NOT_FINITE naming the field', () => {
    const err = decodeFails(fixture('huge-exponent.json'), 'json');
    assert.equal(err.code, NonFiniteNumberError.code);
    assert.equal(err.details['path'], 'x.y[1]');
  });

  test('an integer literal beyond ±(2^53−1) is refused, not rounded; float literals and digit strings pass', () => {
    const err = decodeFails(fixture('big-integer.json'), 'auto');
    assert.equal(err.code, IntegerRangeError.code);
    assert.equal(err.details['path'], 'list[1].v');
    assert.deepEqual(decodeValue(fixture('big-float-ok.json'), 'json'), { id: 'j-5', v: 1e20, w: 12345678901234567890.5, s: '99999999999999999999' });
    assert.deepEqual(decodeValue(fixture('max-safe.json'), 'json'), { id: 'j-6', v: Number.MAX_SAFE_INTEGER, w: -Number.MAX_SAFE_INTEGER });
  });

  test('bytes that are not UTF-8 are refused, never replaced by U+FFFD', () => {
    const err = decodeFails(fixture('invalid-utf8.json'), 'json');
    assert.equal(err.code, DecodeError.code);
    assert.match(err.message, /UTF-8/);
  });

  test('the same value gives the same event whichever format and integer width carried it', () => {
    const fromMsgpack = decodeValue(fixture('tx-uint64-ts.msgpack'), 'auto');
    const fromJson = decodeValue(Buffer.from(JSON.stringify(fromMsgpack)), 'auto');
    assert.deepEqual(fromMsgpack, fromJson);
    assert.deepEqual(decodeValue(pack(fromMsgpack), 'auto'), fromJson); // msgpackr writes ts as a float64
  });
});
