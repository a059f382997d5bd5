/**
 * Runs model batches in a pool of inference workers (inference-worker.ts). Inputs are transferred to the
 * worker and outputs transferred back, so a batch crosses the thread boundary without copying its tensors.
 * The pool (worker-pool.ts) turns a dead worker, a full queue and a closed pool into typed errors.
 */
import { ModelExecutionError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { BatchResult, BatchTask, ModelRunner, PackedTensor, SessionThreadOptions } from '../../models/runner.js';
import type { InferenceWorkerData } from './inference-worker.js';
import { transferList } from './protocol.js';
import { WorkerPool } from './worker-pool.js';

export interface PiscinaRunnerOptions extends SessionThreadOptions {
  /** Worker threads. Default 1: on a 2-core machine the main thread needs the other core for Kafka and RxJS. */
  readonly threads?: number;
  /** Batches waiting for a free worker before `run` rejects with a retryable MailboxFullError. Default 64. */
  readonly maxQueue?: number;
  /** The task file; the compiled `inference-worker.js` beside this module unless given (tests pass their own). */
  readonly filename?: string | URL;
  /** Counts dead workers (`verdict_worker_restarts_total`). */
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

const DEFAULT_WORKER = new URL('./inference-worker.js', import.meta.url);

export class PiscinaRunner implements ModelRunner {
  readonly #pool: WorkerPool<BatchTask, readonly PackedTensor[]>;

  constructor(options: PiscinaRunnerOptions = {}) {
    this.#pool = new WorkerPool({
      kind: 'inference',
      filename: options.filename ?? DEFAULT_WORKER,
      threads: options.threads ?? 1,
      maxQueue: options.maxQueue ?? 64,
      fallback: ModelExecutionError,
      workerData: {
        intraOpThreads: options.intraOpThreads ?? 1,
        interOpThreads: options.interOpThreads ?? 1,
        maxSessions: options.maxSessions ?? 32,
      } satisfies Omit<InferenceWorkerData, 'metricsChannel'>,
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

  /** Every inference worker's metrics (prom-client JSON), to merge at scrape time. */
  collectMetrics(timeoutMs?: number): Promise<unknown[]> {
    return this.#pool.collectMetrics(timeoutMs);
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
}
