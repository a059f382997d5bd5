/**
 * Where a pipeline's work runs, decided once from its `runtime` section when the pipeline is compiled (and,
 * for the programmatic API's `executeModel`, from the same section without compiling). Nothing else decides
 * placement: the engine and the API read this and place work with `runtime/workers/placement.ts`.
 */
import type { PipelineFile } from './pipeline-schema.js';

/** Where a pipeline's work runs (`placementOf`, from the pipeline's `runtime` section); `Verdict.placement()` reports it. */
export interface Placement {
  /**
   * Where the stream's blocks (ingest, models, join, decisions, encoding) run: `workers` when
   * `mode: blocks` with at least one worker, else `main-thread`.
   */
  readonly blocks: 'main-thread' | 'workers';
  /**
   * Where the model batches of this thread's actors run: `pooled` (a pool of `workers` inference threads)
   * when `mode: inference` with at least one worker, else `in-thread`. With blocks in workers, each block
   * worker runs its own inference in-thread, and the main thread's actors (the API's) run in-thread too.
   */
  readonly inference: 'in-thread' | 'pooled';
  /** Worker threads of the pool that is used (block or inference workers); 0 when everything is on the main thread. */
  readonly workers: number;
  /** onnxruntime intra-op threads per session, in every thread. */
  readonly intraOpThreads: number;
}

export type RuntimeSpec = PipelineFile['runtime'];

/**
 * The placement of a `runtime` section on a machine with `cores` cores. `workers` absent means cores − 1,
 * at least 1: one core stays with the main thread (Kafka I/O, ordering, commits).
 */
export function placementOf(runtime: RuntimeSpec, cores: number): Placement {
  const workers = runtime.workers ?? Math.max(1, cores - 1);
  return {
    blocks: runtime.mode === 'blocks' && workers > 0 ? 'workers' : 'main-thread',
    inference: runtime.mode === 'inference' && workers > 0 ? 'pooled' : 'in-thread',
    workers,
    intraOpThreads: runtime.intraOpThreads,
  };
}
