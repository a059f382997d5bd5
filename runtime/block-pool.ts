/**
 * The main thread's side of block workers: a worker pool (workers/worker-pool.ts) whose tasks are whole
 * blocks. A block's records go over as one transferred buffer (block-wire.ts) and its deliveries come back
 * encoded, the same way, so the main thread keeps only transport, ordering, acknowledgement and commits, and
 * the per-event work runs on the other cores. Each worker builds its engine from the compiled pipeline
 * (plain data): it never reads the pipeline file nor compiles it again. A block that fails in a worker (a
 * crashed worker is replaced by Piscina) is run once more; if it fails again its records become dead
 * letters with the typed error, so the stream never stalls on it.
 */
import { z } from 'zod';
import type { CompiledPipeline } from '../config/compiled.js';
import type { Clock } from '../core/clock.js';
import { WorkerCrashedError, asVerdictError } from '../core/errors.js';
import { componentLogger, silentLogger, type Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { parseOptions } from '../core/options.js';
import { encodeDeadLetter } from '../pipeline/encode-outcome.js';
import type { Delivery } from '../pipeline/outcome.js';
import type { InboundRecord } from '../pipeline/record.js';
import { deliveriesFromWire, toWire, type WireBlock, type WireReply } from './block-wire.js';
import type { PoolWorkerData } from './workers/protocol.js';
import { WorkerPool } from './workers/worker-pool.js';

/** What the block pool starts each worker (block-worker.ts) with: plain data, no file path. */
export interface BlockWorkerData extends PoolWorkerData {
  readonly pipeline: CompiledPipeline;
  /** pino level, or null for no logs. */
  readonly logLevel: string | null;
}

/** `BlockPoolOptions` fields with a default: the one place it lives. */
export const blockPoolSchema = z.object({
  blocksPerWorker: z.number().int().positive().default(64),
});

export interface BlockPoolOptions {
  /** What every worker builds its engine from; its placement gives the thread counts. */
  readonly pipeline: CompiledPipeline;
  /**
   * Blocks a worker holds at once (default 64). A block waits in its worker for micro-batches and the join,
   * so few slots would cap throughput at slots / block latency; the stream's admission bounds the records.
   */
  readonly blocksPerWorker?: number;
  /** pino level of the workers' logs, or null (the default) for none. */
  readonly logLevel?: string | null;
  readonly logger?: Logger;
  /** Counts dead workers (`verdict_worker_restarts_total`). */
  readonly metrics?: Metrics;
  /** Times the metrics collection's wait for worker replies. Default: the production clock. */
  readonly clock?: Clock;
}

const WORKER = new URL('./block-worker.js', import.meta.url);

export class BlockPool {
  readonly #pool: WorkerPool<WireBlock | null, WireReply | null>;
  readonly #pipeline: CompiledPipeline;
  readonly #log: Logger;

  constructor(options: BlockPoolOptions) {
    this.#pipeline = options.pipeline;
    this.#log = componentLogger(options.logger ?? silentLogger, 'block_pool');
    this.#pool = new WorkerPool({
      kind: 'block',
      filename: WORKER,
      threads: options.pipeline.placement.workers,
      concurrentTasksPerWorker: parseOptions(blockPoolSchema, { blocksPerWorker: options.blocksPerWorker }, 'block pool options').blocksPerWorker,
      workerData: { pipeline: options.pipeline, logLevel: options.logLevel ?? null } satisfies Omit<BlockWorkerData, 'metricsChannel'>,
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
  }

  /** Resolves once every worker has built its engine; rejects with the typed error if one cannot. */
  async ready(): Promise<void> {
    await this.#pool.runOnEach('ready', null);
  }

  /** One delivery per record, in order. Never rejects. */
  async process(records: readonly InboundRecord[]): Promise<Delivery[]> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const { block, transfer } = toWire(records);
      try {
        const reply = await this.#pool.run(block, { transfer });
        return reply === null ? [] : deliveriesFromWire(reply);
      } catch (error) {
        lastError = error;
        this.#log.warn({ err: asVerdictError(error).toJSON(), attempt, records: records.length }, 'block failed in a worker');
      }
    }
    const error = asVerdictError(lastError, WorkerCrashedError);
    return records.map((record): Delivery => ({
      kind: 'dead-letter',
      label: error.code,
      output: encodeDeadLetter({ kind: 'dead-letter', record, error, attempts: 2 }, this.#pipeline.output.deadLetter, this.#pipeline.name),
    }));
  }

  /** Every worker's metrics (prom-client JSON), asked for now; a worker that does not answer in time is left out. */
  collectMetrics(timeoutMs?: number): Promise<unknown[]> {
    return this.#pool.collectMetrics(timeoutMs);
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}
