/** Shared model-side types: tensor signatures, manifests, and the per-row values that flow through actors. */
import type { VerdictError } from '../core/errors.js';

/** Every tensor element type onnxruntime-node takes as an input and returns as an output. */
export const ELEMENT_TYPES = [
  'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float16', 'float32', 'float64', 'string',
] as const;
/** A tensor element type, as manifests write it (`ELEMENT_TYPES`). */
export type ElementType = (typeof ELEMENT_TYPES)[number];

/** One named input or output. `shape[0]` is the dynamic batch dimension, written as a string such as "N". */
export interface TensorSpec {
  /** The ONNX graph's input or output name. */
  readonly name: string;
  readonly type: ElementType;
  /** Dimensions: `shape[0]` is the batch dimension; an input's other dims are numbers, whose product is its values per row. */
  readonly shape: ReadonlyArray<number | string>;
}

/** A version's `manifest.json` (validated when read, models/manifest.ts): what `verdict models register` writes. */
export interface ModelManifest {
  readonly name: string;
  /** A positive integer, one per registration. */
  readonly version: number;
  readonly description: string;
  /** ISO 8601 time of registration. */
  readonly createdAt: string;
  /** Hex sha256 of `model.onnx`, checked on every resolve. */
  readonly sha256: string;
  /** The model's signature, read from the ONNX file at registration. */
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** Evaluation figures given at registration (e.g. `auc`), by name; not used by Verdict. */
  readonly metrics: Readonly<Record<string, number>>;
  /** Free-form provenance: framework, training script, data seed. */
  readonly training?: Readonly<Record<string, string | number>>;
}

/** A model version resolved from an id such as `fraud_gbt@production`. */
export interface ResolvedModel {
  readonly name: string;
  /** The version the id resolved to (an alias or a bare name resolved). */
  readonly version: number;
  /** `name@version`: what decisions report as the model that produced an output. */
  readonly ref: string;
  /** Absolute path of its `model.onnx`. */
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
  /** One entry per row, in order: its outputs, or undefined where the row failed. */
  readonly outputs: ReadonlyArray<RowOutputs | undefined>;
  /** One entry per row, in order: its typed error (MODEL_INPUT_INVALID, …), or undefined where it succeeded. */
  readonly errors: ReadonlyArray<VerdictError | undefined>;
}
