/**
 * Places work where the compiled placement says (config/placement.ts decides; this only builds). The one
 * function the engine and the programmatic API both use for the runner of their main-thread model actors;
 * the engine's stream reads `placement.blocks` to send blocks to block workers (block-pool.ts).
 */
import type { Placement } from '../../config/placement.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import { InThreadRunner } from '../../models/in-thread-runner.js';
import type { ModelRunner } from '../../models/runner.js';
import { PiscinaRunner } from './piscina-runner.js';

export interface PlacedInference {
  /** Runs this thread's model batches: a pool of `placement.workers` inference workers, or this thread. */
  readonly runner: ModelRunner;
  /** The inference workers' metrics (prom-client JSON, one per worker), to merge at scrape time; [] in-thread. */
  readonly workerMetrics: () => Promise<unknown[]>;
}

/**
 * `deps.maxModelBytes`: the largest model file a thread loads (the pipeline's `models.maxModelBytes`;
 * default 1 GiB), checked in every thread before onnxruntime reads it.
 */
export function placeInference(
  placement: Placement,
  deps: { readonly metrics?: Metrics; readonly logger?: Logger; readonly maxModelBytes?: number } = {},
): PlacedInference {
  const { intraOpThreads } = placement;
  const bound = deps.maxModelBytes === undefined ? {} : { maxModelBytes: deps.maxModelBytes };
  if (placement.inference === 'in-thread') {
    return { runner: new InThreadRunner({ intraOpThreads, ...bound }), workerMetrics: () => Promise.resolve([]) };
  }
  const runner = new PiscinaRunner({
    threads: placement.workers, intraOpThreads, ...bound,
    ...(deps.metrics === undefined ? {} : { metrics: deps.metrics }),
    ...(deps.logger === undefined ? {} : { logger: deps.logger }),
  });
  return { runner, workerMetrics: () => runner.collectMetrics() };
}
