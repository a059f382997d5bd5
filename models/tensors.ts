/**
 * Packing rows into batch tensors and splitting batch outputs back into rows.
 *
 * This is the hot path of every inference: one allocation per input per batch, a typed-array `set` per row
 * (a memcpy when the row is already a typed array of the input's type, as float32 features are), and on the
 * way back reads straight out of the output buffers the worker transferred, with no intermediate copies.
 *
 * Types are never converted silently. A row's values are converted to the element type the model declares,
 * and anything that would not arrive exactly is a ModelInputError for that row: a non-integer or
 * out-of-range value for an integer input, an int64 beyond 2^53 given as a JS number, a non-boolean for bool,
 * a non-string for string. Floats round to the nearest representable value (float32 and float16 are what
 * the model asked for); a float16 overflow to Infinity is refused. On the way out every number is checked:
 * a NaN, ±Infinity or an int64 that a JS number cannot hold exactly makes that row a ModelOutputError,
 * without failing its batch neighbours.
 */
import {
  ModelExecutionError, ModelInputError, ModelOutputError, ModelSignatureError, type VerdictError,
} from '../core/errors.js';
import { fromHalfBits, toHalfBits } from './float16.js';
import type {
  ElementType, InputScalar, OutputScalar, RowInputs, RowOutputs, RowResults, RowValues, TensorSpec,
} from './types.js';

export type NumericTensorData =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array;
/** A tensor's storage as onnxruntime-node takes it: bool as 0/1 bytes, float16 as half bits, string as strings. */
export type TensorData = NumericTensorData | string[];

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
    case 'bool': return new Uint8Array(length);
    case 'int8': return new Int8Array(length);
    case 'int16': return new Int16Array(length);
    case 'int32': return new Int32Array(length);
    case 'int64': return new BigInt64Array(length);
    case 'uint8': return new Uint8Array(length);
    case 'uint16': return new Uint16Array(length);
    case 'uint32': return new Uint32Array(length);
    case 'uint64': return new BigUint64Array(length);
    case 'float16': return new Uint16Array(length);
    case 'float32': return new Float32Array(length);
    case 'float64': return new Float64Array(length);
    case 'string': return new Array<string>(length).fill('');
  }
}

/**
 * The typed array a row may already be in to be copied without a look at its values. bool and float16 have
 * none: their storage (bytes, half bits) does not hold the JS values a caller means, so they are converted.
 */
const EXACT: Partial<Record<ElementType, new (n: number) => NumericTensorData>> = {
  int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
  float32: Float32Array, float64: Float64Array,
};

const INT_RANGE: Partial<Record<ElementType, readonly [number, number]>> = {
  int8: [-128, 127], int16: [-32768, 32767], int32: [-(2 ** 31), 2 ** 31 - 1],
  uint8: [0, 255], uint16: [0, 65535], uint32: [0, 2 ** 32 - 1],
};
const BIG_RANGE: Partial<Record<ElementType, readonly [bigint, bigint]>> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

interface At { readonly name: string; readonly row: number; readonly index: number }

function refuse(type: ElementType, value: InputScalar, at: At, why: string): ModelInputError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : `${String(value)}${typeof value === 'bigint' ? 'n' : ''}`;
  return new ModelInputError(`row ${at.row} input '${at.name}' value ${shown} ${why} (${type})`, {
    details: { input: at.name, row: at.row, index: at.index, type, value: shown },
  });
}

/** One value in the storage form of `type`, or a ModelInputError: never a truncation or a wrap-around. */
function convert(type: ElementType, v: InputScalar, at: At): number | bigint | string {
  if (type === 'string') {
    if (typeof v !== 'string') throw refuse(type, v, at, 'is not a string');
    // onnxruntime passes strings as C strings: a NUL would cut it short, and a lone surrogate would become
    // U+FFFD on the way to UTF-8. Either way the model would see another string than the event's.
    if (v.includes('\u0000')) throw refuse(type, v, at, 'contains a NUL character, which onnxruntime would cut the string at');
    if (!(v as string & { isWellFormed(): boolean }).isWellFormed()) throw refuse(type, v, at, 'is not well-formed UTF-16 (a lone surrogate)');
    return v;
  }
  if (typeof v === 'string') throw refuse(type, v, at, 'is a string, the input is not');
  if (type === 'bool') {
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (v === 0 || v === 1 || v === 0n || v === 1n) return Number(v);
    throw refuse(type, v, at, 'is not a boolean');
  }
  // A boolean is exactly 0 or 1 in every numeric type.
  const x = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  const big = BIG_RANGE[type];
  if (big !== undefined) {
    let b: bigint;
    if (typeof x === 'bigint') b = x;
    else if (Number.isSafeInteger(x)) b = BigInt(x);
    else if (Number.isInteger(x)) throw refuse(type, x, at, 'is beyond 2^53, where a JS number is not exact: pass a bigint');
    else throw refuse(type, x, at, 'is not an integer');
    if (b < big[0] || b > big[1]) throw refuse(type, x, at, 'is out of range');
    return b;
  }
  if (typeof x === 'bigint') {
    if (x < BigInt(Number.MIN_SAFE_INTEGER) || x > BigInt(Number.MAX_SAFE_INTEGER)) throw refuse(type, x, at, 'is out of range');
  }
  const n = Number(x);
  const range = INT_RANGE[type];
  if (range !== undefined) {
    if (!Number.isInteger(n)) throw refuse(type, x, at, 'is not an integer');
    if (n < range[0] || n > range[1]) throw refuse(type, x, at, 'is out of range');
    return n;
  }
  if (!Number.isFinite(n)) throw refuse(type, x, at, 'is not a finite number');
  // A finite number beyond float32's range would reach the model as ±Infinity.
  if (type === 'float32' && !Number.isFinite(Math.fround(n))) throw refuse(type, x, at, 'overflows float32');
  if (type === 'float16') {
    const bits = toHalfBits(n);
    if ((bits & 0x7c00) === 0x7c00) throw refuse(type, x, at, 'overflows float16');
    return bits;
  }
  return n;
}

function writeRow(type: ElementType, target: TensorData, offset: number, values: RowValues, name: string, row: number): void {
  const exact = EXACT[type];
  if (exact !== undefined && values instanceof exact) {
    (target as NumericTensorData).set(values as never, offset);
    return;
  }
  const out = target as unknown as { [i: number]: number | bigint | string };
  for (let j = 0; j < values.length; j++) out[offset + j] = convert(type, values[j]!, { name, row, index: j });
}

/**
 * Checks that a row holds exactly the values each input needs, in types that convert exactly, and returns it
 * with each input in the storage form of its declared type (so packing it is a copy). The actor calls it
 * before queuing a row, so a bad row fails alone.
 */
export function checkRow(specs: readonly TensorSpec[], sizes: readonly number[], row: RowInputs, index = 0): RowInputs {
  let prepared: Record<string, RowValues> | undefined;
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
    const exact = EXACT[spec.type];
    if (exact !== undefined && values instanceof exact) continue;
    const data = allocate(spec.type, values.length);
    writeRow(spec.type, data, 0, values, spec.name, index);
    // bool and float16 storage (bytes, half bits) is not what a caller means by its values: those rows stay
    // as given, now known to convert, and are converted again when packed.
    if (spec.type === 'bool' || spec.type === 'float16') continue;
    prepared ??= { ...row };
    prepared[spec.name] = data;
  }
  return prepared ?? row;
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
      writeRow(spec.type, data, r * size, values, spec.name, r);
    }
    packed.push({ name: spec.name, type: spec.type, dims: [n, ...spec.shape.slice(1).map(Number)], data });
  }
  return packed;
}

/** Reads one output value as rules see it; a number that is not finite (or not exact) reads as NaN. */
function readerFor(type: ElementType, data: TensorData): (i: number) => OutputScalar {
  switch (type) {
    case 'bool': return (i) => (data as Uint8Array)[i] !== 0;
    case 'string': return (i) => (data as string[])[i]!;
    case 'float16': return (i) => fromHalfBits((data as Uint16Array)[i]!);
    case 'int64':
    case 'uint64':
      return (i) => {
        const b = (data as BigInt64Array | BigUint64Array)[i]!;
        // Beyond 2^53 a number would silently round: NaN marks the value as not representable.
        return b >= -9007199254740991n && b <= 9007199254740991n ? Number(b) : NaN;
      };
    default: return (i) => (data as Float64Array)[i]!;
  }
}

function invalidOutput(name: string, row: number, raw: unknown, type: ElementType): ModelOutputError {
  const shown = typeof raw === 'bigint' ? `${raw}n` : String(raw);
  const why = typeof raw === 'bigint' ? 'is beyond 2^53, where a JS number is not exact' : 'is not a finite number';
  return new ModelOutputError(`output '${name}' value ${shown} ${why} (${type})`, {
    details: { output: name, row, type, value: shown },
  });
}

/**
 * Checks that every output the manifest declares came back in the manifest's shape for a batch of `n` rows:
 * as many dims, `n` first, and each fixed (numeric) per-row dim as declared (a symbolic one takes any size).
 * A model can break this at run time only (a shape computed from an input value), for some batches and not
 * others, so the error is the rows' (MODEL_OUTPUT_INVALID), which the model actor isolates by bisection like
 * a run that throws. Outputs missing or of another type are left to `unpackRows`. Throws ModelOutputError,
 * `details`: output, dims (as returned), declared (the manifest's shape), rows.
 */
export function checkOutputShapes(outputSpecs: readonly TensorSpec[], outputs: readonly PackedTensor[], n: number): void {
  for (const spec of outputSpecs) {
    const out = outputs.find((o) => o.name === spec.name);
    if (out === undefined || spec.shape.length === 0) continue;
    const { dims } = out;
    let size = 1;
    let fits = dims.length === spec.shape.length && dims[0] === n;
    for (let i = 1; fits && i < dims.length; i++) {
      const declared = spec.shape[i];
      fits = typeof declared !== 'number' || declared === dims[i];
      size *= dims[i]!;
    }
    if (fits && out.data.length === n * size) continue;
    throw new ModelOutputError(
      `output '${spec.name}' came back as [${dims.join(',')}] for a batch of ${n}; the manifest declares [${spec.shape.join(',')}]`,
      { details: { output: spec.name, dims: dims.join(','), declared: spec.shape.join(','), rows: n } },
    );
  }
}

/**
 * Splits batch outputs into `n` rows: a scalar where an output holds one value per row, else an array. A row
 * holding a value rules cannot use (NaN, ±Infinity, an inexact int64) gets a ModelOutputError instead of
 * outputs. The per-row size comes from the returned data, so outputs with symbolic non-batch dims still split.
 * Throws only when the whole result is malformed.
 */
export function unpackRows(outputSpecs: readonly TensorSpec[], outputs: readonly PackedTensor[], n: number): RowResults {
  const rows: Record<string, OutputScalar | OutputScalar[]>[] = [];
  const errors = new Array<VerdictError | undefined>(n).fill(undefined);
  for (let r = 0; r < n; r++) rows.push({});
  for (const spec of outputSpecs) {
    const out = outputs.find((o) => o.name === spec.name);
    if (out === undefined) {
      throw new ModelSignatureError(`model returned no output '${spec.name}'`, { details: { output: spec.name } });
    }
    if (out.type !== spec.type) {
      throw new ModelSignatureError(`output '${spec.name}' is ${out.type}, the manifest declares ${spec.type}`, {
        details: { output: spec.name, type: out.type, declared: spec.type },
      });
    }
    const { data } = out;
    if (out.dims[0] !== n || (n > 0 && data.length % n !== 0)) {
      throw new ModelExecutionError(
        `output '${spec.name}' has dims [${out.dims.join(',')}] and ${data.length} values for a batch of ${n}`,
        { details: { output: spec.name, rows: n } },
      );
    }
    const read = readerFor(out.type, data);
    const numeric = out.type !== 'bool' && out.type !== 'string';
    const size = n === 0 ? 0 : data.length / n;
    for (let r = 0; r < n; r++) {
      const row = rows[r]!;
      const base = r * size;
      let bad = -1;
      if (size === 1) {
        const v = read(base);
        if (numeric && !Number.isFinite(v)) bad = base;
        row[spec.name] = v;
      } else {
        const values = new Array<OutputScalar>(size);
        for (let j = 0; j < size; j++) {
          const v = read(base + j);
          if (numeric && bad < 0 && !Number.isFinite(v)) bad = base + j;
          values[j] = v;
        }
        row[spec.name] = values;
      }
      if (bad >= 0 && errors[r] === undefined) errors[r] = invalidOutput(spec.name, r, data[bad], out.type);
    }
  }
  return { outputs: rows.map((row, r) => (errors[r] === undefined ? (row as RowOutputs) : undefined)), errors };
}
