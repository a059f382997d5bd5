/**
 * Packing rows into batch tensors and splitting batch outputs back into rows.
 *
 * This is the hot path of every inference: one allocation per input per batch, a typed-array `set` per row
 * (a memcpy when the row is already a typed array), and on the way back reads straight out of the output
 * buffers the worker transferred, with no intermediate copies.
 */
import { ModelExecutionError, ModelInputError, ModelSignatureError } from '../core/errors.js';
import type { ElementType, RowInputs, RowOutputs, TensorSpec } from './types.js';

export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array;

/** A whole batch of one input or output: `dims[0]` is the number of rows. */
export interface PackedTensor {
  readonly name: string;
  readonly type: ElementType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

/**
 * Values per row: the product of the non-batch dims. A symbolic non-batch dim cannot be packed (rows would
 * not have a fixed length), so it is a signature error, raised once when a model is set up.
 */
export function rowSize(spec: TensorSpec): number {
  let size = 1;
  for (let i = 1; i < spec.shape.length; i++) {
    const dim = spec.shape[i];
    if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 0) {
      throw new ModelSignatureError(`tensor '${spec.name}' has a non-numeric dim ${String(dim)} at index ${i}`, {
        details: { tensor: spec.name, index: i },
      });
    }
    size *= dim;
  }
  return size;
}

export function allocate(type: ElementType, length: number): TensorData {
  switch (type) {
    case 'float32': return new Float32Array(length);
    case 'float64': return new Float64Array(length);
    case 'int32': return new Int32Array(length);
    case 'int64': return new BigInt64Array(length);
  }
}

/** Checks that a row holds exactly the values each input needs; the actor calls it before queuing a row. */
export function checkRow(specs: readonly TensorSpec[], sizes: readonly number[], row: RowInputs, index = 0): void {
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!;
    const values = row[spec.name];
    if (values === undefined) {
      throw new ModelInputError(`row ${index} has no values for input '${spec.name}'`, {
        details: { input: spec.name, row: index },
      });
    }
    if (values.length !== sizes[i]) {
      throw new ModelInputError(
        `row ${index} input '${spec.name}' has ${values.length} values, expected ${sizes[i]}`,
        { details: { input: spec.name, row: index, got: values.length, expected: sizes[i] } },
      );
    }
  }
}

function writeInt64(target: BigInt64Array, offset: number, values: ArrayLike<number>, name: string, row: number): void {
  for (let j = 0; j < values.length; j++) {
    const v = values[j]!;
    if (!Number.isSafeInteger(v)) {
      throw new ModelInputError(`row ${row} input '${name}' value ${v} is not an int64`, {
        details: { input: name, row, index: j },
      });
    }
    target[offset + j] = BigInt(v);
  }
}

/**
 * Packs `rows` into one tensor per spec with batch dim `rows.length`. Every buffer is freshly allocated and
 * owned by the result, so a runner may transfer it to a worker without touching the callers' rows.
 */
export function packRows(specs: readonly TensorSpec[], rows: readonly RowInputs[]): PackedTensor[] {
  const n = rows.length;
  const packed: PackedTensor[] = [];
  for (const spec of specs) {
    const size = rowSize(spec);
    const data = allocate(spec.type, n * size);
    for (let r = 0; r < n; r++) {
      const values = rows[r]![spec.name];
      if (values === undefined || values.length !== size) {
        throw new ModelInputError(
          `row ${r} input '${spec.name}' has ${values === undefined ? 'no' : values.length} values, expected ${size}`,
          { details: { input: spec.name, row: r, expected: size } },
        );
      }
      if (data instanceof BigInt64Array) writeInt64(data, r * size, values, spec.name, r);
      else data.set(values, r * size);
    }
    packed.push({ name: spec.name, type: spec.type, dims: [n, ...spec.shape.slice(1).map(Number)], data });
  }
  return packed;
}

function read(data: TensorData, i: number): number {
  const v = data[i]!;
  return typeof v === 'bigint' ? Number(v) : v;
}

/**
 * Splits batch outputs into `n` rows: a scalar where an output holds one value per row, else an array.
 * The per-row size comes from the returned data, so outputs with symbolic non-batch dims still split.
 */
export function unpackRows(outputSpecs: readonly TensorSpec[], outputs: readonly PackedTensor[], n: number): RowOutputs[] {
  const rows: Record<string, number | number[]>[] = [];
  for (let r = 0; r < n; r++) rows.push({});
  for (const spec of outputSpecs) {
    const out = outputs.find((o) => o.name === spec.name);
    if (out === undefined) {
      throw new ModelSignatureError(`model returned no output '${spec.name}'`, { details: { output: spec.name } });
    }
    const { data } = out;
    if (out.dims[0] !== n || (n > 0 && data.length % n !== 0)) {
      throw new ModelExecutionError(
        `output '${spec.name}' has dims [${out.dims.join(',')}] and ${data.length} values for a batch of ${n}`,
        { details: { output: spec.name, rows: n } },
      );
    }
    const size = n === 0 ? 0 : data.length / n;
    for (let r = 0; r < n; r++) {
      const row = rows[r]!;
      if (size === 1) {
        row[spec.name] = read(data, r);
      } else {
        const values = new Array<number>(size);
        const base = r * size;
        for (let j = 0; j < size; j++) values[j] = read(data, base + j);
        row[spec.name] = values;
      }
    }
  }
  return rows;
}
