import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelExecutionError, ModelInputError, ModelSignatureError } from '../core/errors.js';
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
  assert.deepEqual(unpackRows(specs, outputs, 2), [
    { p: 0.5, e: [1, 2], t: 10 },
    { p: 0.25, e: [3, 4], t: -3 },
  ]);
});

void test('unpackRows refuses outputs whose batch dim does not match the rows sent', () => {
  const spec: TensorSpec = { name: 'p', type: 'float32', shape: ['N', 1] };
  const out: PackedTensor = { name: 'p', type: 'float32', dims: [3, 1], data: new Float32Array(3) };
  assert.throws(() => unpackRows([spec], [out], 2), ModelExecutionError);
  assert.throws(() => unpackRows([spec], [], 2), ModelSignatureError);
});
