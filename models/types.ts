/** Shared model-side types: tensor signatures, manifests, and the per-row values that flow through actors. */
import type { VerdictError } from '../core/errors.js';

/** Every tensor element type onnxruntime-node takes as an input and returns as an output. */
export const ELEMENT_TYPES = [
  'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float16', 'float32', 'float64', 'string',
] as const;
export type ElementType = (typeof ELEMENT_TYPES)[number];

/** One named input or output. `shape[0]` is the dynamic batch dimension, written as a string such as "N". */
export interface TensorSpec {
  readonly name: string;
  readonly type: ElementType;
  readonly shape: ReadonlyArray<number | string>;
}

export interface ModelManifest {
  readonly name: string;
  readonly version: number;
  readonly description: string;
  readonly createdAt: string;
  readonly sha256: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  readonly metrics: Readonly<Record<string, number>>;
  /** Free-form provenance: framework, training script, data seed. */
  readonly training?: Readonly<Record<string, string | number>>;
}

/** A model version resolved from an id such as `fraud_gbt@production`. */
export interface ResolvedModel {
  readonly name: string;
  readonly version: number;
  /** `name@version`: what decisions report as the model that produced an output. */
  readonly ref: string;
  readonly path: string;
  readonly manifest: ModelManifest;
}

/**
 * One value of a row's input before packing. The packer converts it to the input's declared element type and
 * refuses what would not survive exactly (see tensors.ts): a typed array of the declared type is copied as is.
 */
export type InputScalar = number | bigint | boolean | string;

/** One input's values for one row (the product of the non-batch dims). */
export type RowValues = ArrayLike<InputScalar>;

/** One row's inputs: for each model input, the values of one row. */
export type RowInputs = Readonly<Record<string, RowValues>>;

/**
 * One output value as rules and decisions see it: numeric types (int64 and uint64 included, when exact)
 * are numbers, never NaN or ±Infinity; bool is a boolean; string is a string.
 */
export type OutputScalar = number | boolean | string;

/** One row's outputs: a scalar where the per-row shape holds one value, otherwise an array. */
export type RowOutputs = Readonly<Record<string, OutputScalar | readonly OutputScalar[]>>;

/** Each row's outputs or typed error, by the row's position in a call of many rows. */
export interface RowResults {
  readonly outputs: ReadonlyArray<RowOutputs | undefined>;
  readonly errors: ReadonlyArray<VerdictError | undefined>;
}
