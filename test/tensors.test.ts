import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelExecutionError, ModelInputError, ModelOutputError, ModelSignatureError } from '../core/errors.js';
import { checkRow, packRows, rowSize, unpackRows, type PackedTensor } from '../models/tensors.js';
import type { TensorSpec } from '../models/types.js';

const x: TensorSpec = { name: 'x', type: 'float32', shape: ['N', 3] };
const ids: TensorSpec = { name: 'ids', type: 'int64', shape: ['N', 2] };

void test('packRows lays rows out one after another with the batch dim first', () => {
  const [packed] = packRows([x], [{ x: [1, 2, 3] }, { x: new Float64Array([4, 5, 6]) }]);
  assert.ok(packed !== undefined);
  assert.deepEqual(packed.dims, [2, 3]);
  assert.ok(packed.data instanceof Float32Array);
  assert.deepEqual([...packed.data], [1, 2, 3, 4, 5, 6]);
});

void test('packRows packs several inputs, each into its own freshly owned buffer', () => {
  const row = { x: new Float32Array([1, 2, 3]), ids: [7, 8] };
  const [px, pids] = packRows([x, ids], [row]);
  assert.ok(px !== undefined && pids !== undefined);
  assert.ok(px.data instanceof Float32Array);
  assert.notEqual(px.data.buffer, row.x.buffer);
  assert.ok(pids.data instanceof BigInt64Array);
  assert.deepEqual([...pids.data], [7n, 8n]);
  assert.deepEqual(pids.dims, [1, 2]);
});

void test('packRows rejects a row of the wrong length, naming the input and the row', () => {
  assert.throws(
    () => packRows([x], [{ x: [1, 2, 3] }, { x: [1, 2] }]),
    (e: unknown) => e instanceof ModelInputError && e.details['input'] === 'x' && e.details['row'] === 1,
  );
  assert.throws(() => packRows([x], [{ y: [1, 2, 3] }]), ModelInputError);
});

void test('packRows rejects a non-integer value for an int64 input', () => {
  assert.throws(() => packRows([ids], [{ ids: [1, 2.5] }]), ModelInputError);
});

void test('checkRow accepts a well-formed row and names the input of a malformed one', () => {
  checkRow([x, ids], [3, 2], { x: [0, 0, 0], ids: [1, 2] });
  assert.throws(
    () => checkRow([x, ids], [3, 2], { x: [0, 0, 0], ids: [1] }),
    (e: unknown) => e instanceof ModelInputError && e.details['input'] === 'ids',
  );
});

void test('rowSize multiplies the non-batch dims and refuses symbolic ones', () => {
  assert.equal(rowSize({ name: 'm', type: 'float32', shape: ['N', 4, 2] }), 8);
  assert.equal(rowSize({ name: 's', type: 'float32', shape: ['N'] }), 1);
  assert.throws(() => rowSize({ name: 'bad', type: 'float32', shape: ['N', 'M'] }), ModelSignatureError);
});

void test('unpackRows gives a scalar for one value per row and an array otherwise', () => {
  const specs: TensorSpec[] = [
    { name: 'p', type: 'float32', shape: ['N', 1] },
    { name: 'e', type: 'float64', shape: ['N', 2] },
    { name: 't', type: 'int64', shape: ['N', 1] },
  ];
  const outputs: PackedTensor[] = [
    { name: 'e', type: 'float64', dims: [2, 2], data: new Float64Array([1, 2, 3, 4]) },
    { name: 'p', type: 'float32', dims: [2, 1], data: new Float32Array([0.5, 0.25]) },
    { name: 't', type: 'int64', dims: [2, 1], data: new BigInt64Array([10n, -3n]) },
  ];
  assert.deepEqual(unpackRows(specs, outputs, 2), {
    outputs: [
      { p: 0.5, e: [1, 2], t: 10 },
      { p: 0.25, e: [3, 4], t: -3 },
    ],
    errors: [undefined, undefined],
  });
});

void test('unpackRows refuses outputs whose batch dim does not match the rows sent', () => {
  const spec: TensorSpec = { name: 'p', type: 'float32', shape: ['N', 1] };
  const out: PackedTensor = { name: 'p', type: 'float32', dims: [3, 1], data: new Float32Array(3) };
  assert.throws(() => unpackRows([spec], [out], 2), ModelExecutionError);
  assert.throws(() => unpackRows([spec], [], 2), ModelSignatureError);
});

void test('unpackRows fails only the rows holding NaN, ±Infinity or an int64 beyond 2^53, naming the output', () => {
  const specs: TensorSpec[] = [
    { name: 'p', type: 'float32', shape: ['N', 1] },
    { name: 'v', type: 'float64', shape: ['N', 2] },
    { name: 't', type: 'int64', shape: ['N', 1] },
  ];
  const outputs: PackedTensor[] = [
    { name: 'p', type: 'float32', dims: [5, 1], data: new Float32Array([NaN, 0.5, 0.25, 0.75, 1]) },
    { name: 'v', type: 'float64', dims: [5, 2], data: new Float64Array([0, 0, 1, 2, 3, -Infinity, 5, 6, 7, 8]) },
    { name: 't', type: 'int64', dims: [5, 1], data: new BigInt64Array([1n, 2n, 3n, 2n ** 53n, -(2n ** 53n - 1n)]) },
  ];
  const { outputs: rows, errors } = unpackRows(specs, outputs, 5);
  assert.deepEqual(rows, [undefined, { p: 0.5, v: [1, 2], t: 2 }, undefined, undefined, { p: 1, v: [7, 8], t: -(2 ** 53 - 1) }]);
  assert.deepEqual(errors.map((e) => e?.code), [ModelOutputError.code, undefined, ModelOutputError.code, ModelOutputError.code, undefined]);
  assert.deepEqual(errors.map((e) => e?.details['output']), ['p', undefined, 'v', 't', undefined]);
  assert.equal(errors[0]?.details['value'], 'NaN');
  assert.equal(errors[2]?.details['value'], '-Infinity');
  assert.equal(errors[3]?.details['value'], '9007199254740992n');
});

void test('unpackRows reads bool as booleans, string as strings and float16 bits as numbers', () => {
  const specs: TensorSpec[] = [
    { name: 'b', type: 'bool', shape: ['N', 1] },
    { name: 's', type: 'string', shape: ['N', 1] },
    { name: 'h', type: 'float16', shape: ['N', 1] },
    { name: 'u', type: 'uint64', shape: ['N', 1] },
  ];
  const outputs: PackedTensor[] = [
    { name: 'b', type: 'bool', dims: [2, 1], data: new Uint8Array([1, 0]) },
    { name: 's', type: 'string', dims: [2, 1], data: ['grocery', ''] },
    { name: 'h', type: 'float16', dims: [2, 1], data: new Uint16Array([0x3e00, 0x7c00]) },
    { name: 'u', type: 'uint64', dims: [2, 1], data: new BigUint64Array([2n ** 53n - 1n, 0n]) },
  ];
  const { outputs: rows, errors } = unpackRows(specs, outputs, 2);
  assert.deepEqual(rows, [{ b: true, s: 'grocery', h: 1.5, u: 2 ** 53 - 1 }, undefined]);
  assert.equal(errors[1]?.code, ModelOutputError.code, 'a float16 Infinity is not a usable output');
});

void test('unpackRows refuses an output whose element type differs from the manifest', () => {
  const spec: TensorSpec = { name: 'p', type: 'float32', shape: ['N', 1] };
  const out: PackedTensor = { name: 'p', type: 'float64', dims: [1, 1], data: new Float64Array(1) };
  assert.throws(() => unpackRows([spec], [out], 1), ModelSignatureError);
});

const spec = (type: TensorSpec['type']): TensorSpec => ({ name: 'x', type, shape: ['N', 1] });
const packOne = (type: TensorSpec['type'], value: unknown) => packRows([spec(type)], [{ x: [value as number] }])[0]!.data;
const refused = (type: TensorSpec['type'], value: unknown) =>
  assert.throws(() => packOne(type, value), (e: unknown) => e instanceof ModelInputError && e.details['type'] === type, `${type} ${String(value)}`);

void test('packRows converts each value to the declared element type exactly', () => {
  assert.deepEqual(packOne('int8', -128), new Int8Array([-128]));
  assert.deepEqual(packOne('uint8', 255), new Uint8Array([255]));
  assert.deepEqual(packOne('int16', -32768), new Int16Array([-32768]));
  assert.deepEqual(packOne('uint16', 65535), new Uint16Array([65535]));
  assert.deepEqual(packOne('int32', 2 ** 31 - 1), new Int32Array([2 ** 31 - 1]));
  assert.deepEqual(packOne('uint32', 2 ** 32 - 1), new Uint32Array([2 ** 32 - 1]));
  assert.deepEqual(packOne('int64', -(2 ** 53 - 1)), new BigInt64Array([-(2n ** 53n - 1n)]));
  assert.deepEqual(packOne('int64', 2n ** 62n), new BigInt64Array([2n ** 62n]));
  assert.deepEqual(packOne('uint64', 2n ** 64n - 1n), new BigUint64Array([2n ** 64n - 1n]));
  assert.deepEqual(packOne('bool', true), new Uint8Array([1]));
  assert.deepEqual(packOne('bool', 0), new Uint8Array([0]));
  assert.deepEqual(packOne('float16', 1.5), new Uint16Array([0x3e00]));
  assert.deepEqual(packOne('float64', 1000000.02), new Float64Array([1000000.02]));
  assert.deepEqual(packOne('string', 'grocery'), ['grocery']);
  assert.deepEqual(packOne('int32', true), new Int32Array([1]));
});

void test('packRows refuses values the declared element type cannot hold, never truncating or wrapping', () => {
  refused('int32', 2.5);
  refused('int32', 2 ** 31);
  refused('int8', 128);
  refused('uint8', 256);
  refused('uint8', -1);
  refused('uint16', 65536);
  refused('uint32', -1);
  refused('int64', 2 ** 53 + 2);
  refused('int64', 2n ** 63n);
  refused('uint64', -1);
  refused('bool', 2);
  refused('bool', 'true');
  refused('float16', 65520);
  refused('float32', NaN);
  refused('float64', Infinity);
  refused('float32', 'grocery');
  refused('string', 7);
});

void test('checkRow converts a plain row to the declared storage once, so packing it is a copy', () => {
  const specs = [spec('int32')];
  const row = checkRow(specs, [1], { x: [7] });
  assert.ok(row['x'] instanceof Int32Array);
  const typed = { x: new Int32Array([9]) };
  assert.equal(checkRow(specs, [1], typed), typed, 'a row already in the declared type is passed through');
  assert.throws(() => checkRow(specs, [1], { x: [7.5] }, 3), (e: unknown) => e instanceof ModelInputError && e.details['row'] === 3);
});
