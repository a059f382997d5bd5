/**
 * The `ModelRunner` seam: where one batch runs. A pool of inference workers (`PiscinaRunner`, in
 * runtime/workers/) or the calling thread (`InThreadRunner`); the actor above does not know which, so
 * placement is configuration (config/placement.ts) and measurement.
 */
import { z } from 'zod';
import { DEFAULT_MAX_MODEL_BYTES } from './model-file.js';
import type { PackedTensor } from './tensors.js';

export type { PackedTensor, TensorData } from './tensors.js';

/** One batch for one model. A runner takes ownership of the input buffers (a pool transfers them away). */
export interface BatchTask {
  readonly modelPath: string;
  /** Content hash of the model file: with the path, the key of the per-thread session cache. */
  readonly modelSha256: string;
  readonly inputs: readonly PackedTensor[];
  readonly outputNames: readonly string[];
}

/** The requested outputs, in the order of `outputNames`, each with its batch dim first. */
export interface BatchResult {
  readonly outputs: readonly PackedTensor[];
}

/** One model version's session, as the session caches key it. */
export interface SessionKey {
  readonly modelPath: string;
  readonly modelSha256: string;
}

/** Where batches run: `PiscinaRunner` (worker threads) or `InThreadRunner` (the calling thread). */
export interface ModelRunner {
  /** Runs one batch. Rejects with a VerdictError whose code says what went wrong and whether to retry. */
  run(task: BatchTask): Promise<BatchResult>;
  /**
   * Loads the version's session in every thread this runner runs batches on (a pool: each worker), so a
   * version about to take traffic (runtime/live-models.ts) is loaded everywhere first. Rejects with the typed
   * load error. Optional: a runner without it loads on first use.
   */
  load?(key: SessionKey): Promise<void>;
  /** Releases the version's session in every thread once its running batches end (an unloaded version). Optional. */
  release?(key: SessionKey): Promise<void>;
  /** Waits for running batches, then releases sessions and threads. */
  close(): Promise<void>;
}

/**
 * Options every runner honours: ONNX Runtime's own thread pools, per session. Loose; what is left out is
 * `sessionThreadSchema`'s default.
 */
export interface SessionThreadOptions {
  /** Threads one operator may use. Default 1: on a 2-core machine parallelism comes from the batch and the pool. */
  readonly intraOpThreads?: number;
  /** Threads running independent graph branches; unused in the sequential execution mode set here. Default 1. */
  readonly interOpThreads?: number;
  /** Sessions kept per thread before the least recently used is released. Default 32. */
  readonly maxSessions?: number;
  /**
   * The largest model file (bytes) a thread loads: checked with `stat` before onnxruntime reads it
   * (MODEL_FILE_TOO_LARGE). Default 1 GiB (`DEFAULT_MAX_MODEL_BYTES`); a pipeline's `models.maxModelBytes`.
   */
  readonly maxModelBytes?: number;
}

/** `SessionThreadOptions` defaulted and checked: the one place their defaults live. */
export const sessionThreadSchema = z.object({
  intraOpThreads: z.number().int().positive().default(1),
  interOpThreads: z.number().int().positive().default(1),
  maxSessions: z.number().int().positive().default(32),
  maxModelBytes: z.number().int().positive().default(DEFAULT_MAX_MODEL_BYTES),
});
export type SessionThreads = z.output<typeof sessionThreadSchema>;
