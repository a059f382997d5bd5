/**
 * The main thread's side of block workers: a Piscina pool whose tasks are whole blocks. A block's records
 * go over as one transferred buffer (block-wire.ts) and its deliveries come back encoded, the same way, so
 * the main thread keeps only transport, ordering, acknowledgement and commits, and the per-event work runs
 * on the other cores. A block whose worker thread dies (Piscina replaces it) is retried once, then bisected
 * to find the record that kills it, which is dead-lettered with MODEL_WORKER_CRASHED; other failures
 * dead-letter the block's records with the typed error, so the stream never stalls on it
 * (runtime/isolate-block.ts).
 */
import { randomUUID } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { z } from 'zod';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { preciseScheduler, type Clock } from '../core/clock.js';
import { asVerdictError } from '../core/errors.js';
import { componentLogger, silentLogger, type Logger } from '../core/log.js';
import { parseOptions } from '../core/options.js';
import type { Delivery } from '../pipeline/outcome.js';
import type { InboundRecord } from '../pipeline/record.js';
import { deliveriesFromWire, toWire, type WireBlock, type WireReply } from './block-wire.js';
import type { BlockReply, BlockWorkerData, MetricsReply, MetricsRequest } from './block-protocol.js';
import { processIsolated } from './isolate-block.js';

/** `BlockPoolOptions` fields with a default: the one place it lives. */
export const blockPoolSchema = z.object({
  blocksPerWorker: z.number().int().positive().default(64),
});

export interface BlockPoolOptions {
  readonly file: PipelineFile;
  readonly baseDir: string;
  readonly threads: number;
  readonly intraOpThreads: number;
  /**
   * Blocks a worker holds at once (default 64). A block waits in its worker for micro-batches and the join,
   * so few slots would cap throughput at slots / block latency; the stream's admission bounds the records.
   */
  readonly blocksPerWorker?: number;
  readonly deadLetterTopic: string;
  readonly pipeline: string;
  readonly logLevel?: string | null;
  readonly logger?: Logger;
  /**
   * The task file; the compiled `block-worker.js` beside this module unless given. Tests pass one that wraps
   * it (to crash a thread on a marked record); not reachable from a pipeline or daemon file.
   */
  readonly taskFile?: string | URL;
  /** Times the metrics collection's wait for worker replies. Default: the production clock. */
  readonly clock?: Clock;
}

const WORKER = new URL('./block-worker.js', import.meta.url);

export class BlockPool {
  readonly #pool: Piscina<WireBlock | null, BlockReply<WireReply | null>>;
  readonly #channel: BroadcastChannel;
  readonly #options: BlockPoolOptions;
  readonly #log: Logger;
  #requests = 0;

  constructor(options: BlockPoolOptions) {
    this.#options = options;
    this.#log = componentLogger(options.logger ?? silentLogger, 'block_pool');
    const metricsChannel = `verdict-metrics-${randomUUID()}`;
    this.#channel = new BroadcastChannel(metricsChannel);
    this.#channel.unref();
    this.#pool = new Piscina<WireBlock | null, BlockReply<WireReply | null>>({
      filename: (options.taskFile ?? WORKER).toString(),
      minThreads: options.threads,
      maxThreads: options.threads,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: parseOptions(blockPoolSchema, { blocksPerWorker: options.blocksPerWorker }, 'block pool options').blocksPerWorker,
      // 'sync' parks an idle worker in Atomics.wait, which stops its event loop: its metrics could not answer
      // a scrape, nor a timer run, between blocks.
      atomics: 'async',
      workerData: {
        file: options.file, baseDir: options.baseDir, intraOpThreads: options.intraOpThreads,
        logLevel: options.logLevel ?? null, metricsChannel,
      } satisfies BlockWorkerData,
    });
    this.#pool.on('error', (error: unknown) => this.#log.error({ err: error }, 'block worker failed outside a task'));
  }

  /** Resolves once every worker has built its engine; rejects with the typed error if one cannot. */
  async ready(): Promise<void> {
    const runs = Array.from({ length: this.#pool.threads.length || this.#options.threads }, () => this.#pool.run(null, { name: 'ready' }));
    for (const reply of await Promise.all(runs)) if (!reply.ok) throw asVerdictError(reply.error);
  }

  /** One delivery per record, in order. Never rejects. See runtime/isolate-block.ts for failures. */
  process(records: readonly InboundRecord[]): Promise<Delivery[]> {
    return processIsolated(records, {
      run: (piece) => this.#runOnce(piece),
      deadLetterTopic: this.#options.deadLetterTopic,
      pipeline: this.#options.pipeline,
      onRetry: (error, attempt) => this.#log.warn({ err: error.toJSON(), attempt, records: records.length }, 'block failed in a worker; retrying once'),
    });
  }

  /** One attempt at a block: rejects with the typed error a worker replied, or Piscina's when its thread died. */
  async #runOnce(records: readonly InboundRecord[]): Promise<Delivery[]> {
    const { block, transfer } = toWire(records);
    const reply = await this.#pool.run(block, { transferList: transfer });
    if (!reply.ok) throw asVerdictError(reply.error);
    return reply.value === null ? [] : deliveriesFromWire(reply.value);
  }

  /** Every worker's metrics (prom-client JSON), asked for now; a worker that does not answer in time is left out. */
  collectMetrics(timeoutMs = 500): Promise<unknown[]> {
    const id = ++this.#requests;
    const expected = this.#pool.threads.length;
    return new Promise((resolve) => {
      const replies = new Map<number, unknown>();
      const done = (): void => {
        timer.unsubscribe();
        this.#channel.removeEventListener('message', onMessage);
        resolve([...replies.values()]);
      };
      const onMessage = (event: unknown): void => {
        const reply = (event as { data?: MetricsReply }).data;
        if (reply?.type !== 'metrics' || reply.id !== id) return;
        replies.set(reply.threadId, reply.json);
        if (replies.size >= expected) done();
      };
      const timer = (this.#options.clock ?? preciseScheduler).schedule(done, timeoutMs);
      this.#channel.addEventListener('message', onMessage);
      this.#channel.postMessage({ type: 'collect', id } satisfies MetricsRequest);
    });
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
    this.#channel.close();
  }
}
