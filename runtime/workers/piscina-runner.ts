/**
 * Runs model batches in a pool of inference workers (inference-worker.ts). Inputs are transferred to the
 * worker and outputs transferred back, so a batch crosses the thread boundary without copying its tensors.
 * The pool (worker-pool.ts) turns a dead worker, a full queue and a closed pool into typed errors.
 */
import { z } from 'zod';
import { ModelExecutionError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import { parseOptions } from '../../core/options.js';
import {
  sessionThreadSchema, type BatchResult, type BatchTask, type ModelRunner, type PackedTensor, type SessionKey, type SessionThreadOptions,
} from '../../models/runner.js';
import type { InferenceControl, InferenceWorkerData } from './inference-worker.js';
import { transferList } from './protocol.js';
import { WorkerPool } from './worker-pool.js';

/** A pool's size and queue, with the session options: the one place their defaults live. */
export const piscinaRunnerSchema = sessionThreadSchema.extend({
  threads: z.number().int().positive().default(1),
  maxQueue: z.number().int().nonnegative().default(64),
});

/** Loose: what is left out is `piscinaRunnerSchema`'s default; a bad value throws `CONFIG_INVALID`. */
export interface PiscinaRunnerOptions extends SessionThreadOptions {
  /** Worker threads. Default 1: on a 2-core machine the main thread needs the other core for Kafka and RxJS. */
  readonly threads?: number;
  /** Batches waiting for a free worker before `run` rejects with a retryable MailboxFullError. Default 64. */
  readonly maxQueue?: number;
  /** The task file; the compiled `inference-worker.js` beside this module unless given (tests pass their own). */
  readonly filename?: string | URL;
  /** Counts dead workers (`verdict_worker_restarts_total`). */
  readonly metrics?: Metrics;
  /** Default: silent. */
  readonly logger?: Logger;
}

const DEFAULT_WORKER = new URL('./inference-worker.js', import.meta.url);

/**
 * A `ModelRunner` on a pool of inference worker threads (Piscina), each with its own session cache. Pass it
 * as `VerdictOptions.runner` / `EngineOptions.runner` (the caller then closes it). Options are checked at
 * construction (`CONFIG_INVALID`); `run` rejects with `ACTOR_MAILBOX_FULL` (retryable) when
 * the queue is full, `MODEL_WORKER_CRASHED` (retryable) when a worker dies under the batch, `ACTOR_STOPPED`
 * after close, and the model's own errors (MODEL_EXECUTION_FAILED, …) from the worker.
 */
export class PiscinaRunner implements ModelRunner {
  readonly #pool: WorkerPool<BatchTask, readonly PackedTensor[]>;

  constructor(options: PiscinaRunnerOptions = {}) {
    const { threads, maxQueue, intraOpThreads, interOpThreads, maxSessions, maxModelBytes } = parseOptions(piscinaRunnerSchema, options, 'inference pool options');
    this.#pool = new WorkerPool({
      kind: 'inference',
      filename: options.filename ?? DEFAULT_WORKER,
      threads,
      maxQueue,
      concurrentTasksPerWorker: 1,
      fallback: ModelExecutionError,
      workerData: { intraOpThreads, interOpThreads, maxSessions, maxModelBytes } satisfies Omit<InferenceWorkerData, 'metricsChannel' | 'controlChannel'>,
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  }

  /** Worker threads alive now (a crashed worker is replaced). */
  get threads(): number {
    return this.#pool.threads;
  }

  /**
   * Runs one batch in a worker; the input buffers are moved there. Rejects with the batch's typed error, or
   * `MODEL_WORKER_CRASHED` (the worker died), `ACTOR_MAILBOX_FULL` (queue full), `ACTOR_STOPPED` (closed).
   */
  async run(task: BatchTask): Promise<BatchResult> {
    const outputs = await this.#pool.run(task, { transfer: transferList(task.inputs.map((i) => i.data)) });
    return { outputs };
  }

  /** Loads the version's session in every inference worker; rejects with a worker's typed load error, or MODEL_TIMEOUT. */
  async load(key: SessionKey): Promise<void> {
    await this.#pool.control({ kind: 'load', ...key } satisfies InferenceControl);
  }

  /** Releases the version's session in every inference worker (each once its running batch ends). */
  async release(key: SessionKey): Promise<void> {
    await this.#pool.control({ kind: 'release', ...key } satisfies InferenceControl);
  }

  /** Every inference worker's metrics (prom-client JSON), to merge at scrape time; a worker silent for `timeoutMs` (default 500 ms, worker-pool.ts) is left out. */
  collectMetrics(timeoutMs?: number): Promise<unknown[]> {
    return this.#pool.collectMetrics(timeoutMs);
  }

  /** Lets running and queued batches finish, then stops the workers. */
  async close(): Promise<void> {
    await this.#pool.close();
  }
}
