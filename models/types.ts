/** Shared model-side types: tensor signatures, manifests, and the per-row values that flow through actors. */
import type { VerdictError } from '../core/errors.js';

export type ElementType = 'float32' | 'float64' | 'int32' | 'int64';

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

/** One row's inputs: for each model input, the values of one row (the product of the non-batch dims). */
export type RowInputs = Readonly<Record<string, ArrayLike<number>>>;

/** One row's outputs: a scalar where the per-row shape holds one value, otherwise an array. */
export type RowOutputs = Readonly<Record<string, number | readonly number[]>>;

/** Each row's outputs or typed error, by the row's position in a call of many rows. */
export interface RowResults {
  readonly outputs: ReadonlyArray<RowOutputs | undefined>;
  readonly errors: ReadonlyArray<VerdictError | undefined>;
}
