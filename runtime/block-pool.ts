/**
 * The main thread's side of block workers: a worker pool (workers/worker-pool.ts) whose tasks are whole
 * blocks. A block's records go over as one transferred buffer (block-wire.ts) and its encoded come back
 * encoded, the same way, so the main thread keeps only transport, ordering, acknowledgement and commits, and
 * the per-event work runs on the other cores. Each worker builds its engine from the compiled pipeline
 * (plain data): it never reads the pipeline file nor compiles it again. A block whose worker thread dies
 * (Piscina replaces it) is retried once, then bisected to find the record that kills it, which is
 * dead-lettered with MODEL_WORKER_CRASHED; other failures dead-letter the block's records with the typed
 * error, so the stream never stalls on it (runtime/isolate-block.ts).
 */
import { z } from 'zod';
import type { CompiledPipeline } from '../config/compiled.js';
import type { Clock } from '../core/clock.js';
import { componentLogger, silentLogger, type Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { parseOptions } from '../core/options.js';
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord } from '../pipeline/record.js';
import type { ModelBindings } from '../pipeline/route/bindings.js';
import type { StateRead } from '../pipeline/state/types.js';
import type { ResolvedModel } from '../models/types.js';
import { bindingsToWire, outcomesFromWire, toWire, type WireBindings, type WireBlock, type WireReply } from './block-wire.js';
import { processIsolated, type BlockPiece } from './isolate-block.js';
import type { ShadowRecord } from './shadow-topic.js';
import type { PoolWorkerData } from './workers/protocol.js';
import { WorkerPool } from './workers/worker-pool.js';

/** What the block pool starts each worker (block-worker.ts) with: plain data, no file path. */
export interface BlockWorkerData extends PoolWorkerData {
  readonly pipeline: CompiledPipeline;
  /** pino level, or null for no logs. */
  readonly logLevel: string | null;
}

/**
 * What the main thread tells every block worker about model versions (runtime/live-models.ts): load and warm
 * a version for a step before blocks use it, or unload one no block uses any more.
 */
export type BlockControl =
  | { readonly kind: 'prepare'; readonly step: number; readonly model: ResolvedModel }
  | { readonly kind: 'retire'; readonly step: number; readonly ref: string }
  /** Hand over the worker's shadow-topic records (runtime/shadow-topic.ts); `settle`: once its comparisons in progress are done. */
  | { readonly kind: 'shadow-records'; readonly settle: boolean };

/** How long every worker has to load and warm a version before the swap is refused (ms). */
const PREPARE_TIMEOUT_MS = 30_000;

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
  /** Counts dead workers (`verdict_worker_restarts_total`) and every block's outcomes (POOL_COUNTED_METRICS). */
  readonly metrics?: Metrics;
  /**
   * The task file; the compiled `block-worker.js` beside this module unless given. Tests pass one that wraps
   * it (to crash a thread on a marked record); not reachable from a pipeline or daemon file.
   */
  readonly taskFile?: string | URL;
  /** Times the metrics collection's wait for worker replies. Default: the production clock. */
  readonly clock?: Clock;
}

const WORKER = new URL('./block-worker.js', import.meta.url);

/**
 * The counters of what became of each record, counted here on the main thread from the encoded outcomes the
 * pool hands back, and left out of the block workers' metrics (block-worker.ts removes them from its
 * registry). A worker's registry dies with its thread: when a record kills its block worker, the outcomes of
 * every block that thread had processed would leave the scrape with it (and the sums would go backwards);
 * and a block retried or bisected would count its records once per attempt.
 */
export const POOL_COUNTED_METRICS: readonly string[] = ['verdict_events_in_total', 'verdict_decisions_total', 'verdict_dead_letters_total'];

export class BlockPool {
  readonly #pool: WorkerPool<WireBlock | null, WireReply | null>;
  readonly #pipeline: CompiledPipeline;
  readonly #log: Logger;
  readonly #metrics: Metrics | undefined;
  /** The last bindings sent and their wire form: every block of a generation shares one. */
  #wire: { readonly bindings: ModelBindings; readonly wire: WireBindings } | undefined;

  constructor(options: BlockPoolOptions) {
    this.#pipeline = options.pipeline;
    this.#log = componentLogger(options.logger ?? silentLogger, 'block_pool');
    this.#metrics = options.metrics;
    this.#pool = new WorkerPool({
      kind: 'block',
      filename: options.taskFile ?? WORKER,
      threads: options.pipeline.placement.workers,
      concurrentTasksPerWorker: parseOptions(blockPoolSchema, { blocksPerWorker: options.blocksPerWorker }, 'block pool options').blocksPerWorker,
      workerData: { pipeline: options.pipeline, logLevel: options.logLevel ?? null } satisfies Omit<BlockWorkerData, 'metricsChannel' | 'controlChannel'>,
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
  }

  /** Resolves once every worker has built its engine; rejects with the typed error if one cannot. */
  async ready(): Promise<void> {
    await this.#pool.runOnEach('ready', null);
  }

  /**
   * One encoded outcome per record, in order, run on `bindings` (default: the worker's compiled versions).
   * `states`: one StateRead per record, by position (see `Engine.processBlock`), carried to the worker with
   * the block. Never rejects. See runtime/isolate-block.ts for failures.
   */
  process(records: readonly InboundRecord[], bindings?: ModelBindings, states?: readonly (StateRead | undefined)[]): Promise<EncodedOutcome[]> {
    const wire = bindings === undefined ? undefined : this.#wireOf(bindings);
    const encoded = processIsolated({ records, states }, {
      run: (piece) => this.#runOnce(piece, wire),
      deadLetterTopic: this.#pipeline.output.deadLetter,
      pipeline: this.#pipeline.name,
      onRetry: (error, attempt) => this.#log.warn({ err: error.toJSON(), attempt, records: records.length }, 'block failed in a worker; retrying once'),
    });
    return this.#metrics === undefined ? encoded : encoded.then((outcomes) => this.#count(records.length, outcomes));
  }

  /** POOL_COUNTED_METRICS for one block: its records in, and each outcome by its label (action or error code). */
  #count(records: number, outcomes: EncodedOutcome[]): EncodedOutcome[] {
    const metrics = this.#metrics!;
    const pipeline = this.#pipeline.name;
    metrics.eventsIn.inc({ pipeline }, records);
    // One labelled increment per label of the block, not per record: a labelled call hashes its label set.
    const decisions = new Map<string, number>();
    const deadLetters = new Map<string, number>();
    for (const o of outcomes) {
      const by = o.kind === 'decision' ? decisions : deadLetters;
      by.set(o.label, (by.get(o.label) ?? 0) + 1);
    }
    for (const [action, n] of decisions) metrics.decisions.inc({ pipeline, action }, n);
    for (const [code, n] of deadLetters) metrics.deadLetters.inc({ pipeline, code }, n);
    return outcomes;
  }

  #wireOf(bindings: ModelBindings): WireBindings {
    if (this.#wire?.bindings !== bindings) this.#wire = { bindings, wire: bindingsToWire(bindings) };
    return this.#wire.wire;
  }

  /**
   * One attempt at a block: rejects with the typed error a worker replied, or the pool's classification of
   * Piscina's own (`MODEL_WORKER_CRASHED` when the thread died).
   */
  async #runOnce({ records, states }: BlockPiece, bindings: WireBindings | undefined): Promise<EncodedOutcome[]> {
    const { block, transfer } = toWire(records, bindings, states);
    const reply = await this.#pool.run(block, { transfer });
    return reply === null ? [] : outcomesFromWire(reply);
  }

  /**
   * Loads and warms `model` for step `step` in every worker thread; resolves once each acked. Rejects with a
   * worker's typed load error, or MODEL_TIMEOUT when a worker did not answer within 30 s.
   */
  async prepare(step: number, model: ResolvedModel): Promise<void> {
    await this.#pool.control({ kind: 'prepare', step, model } satisfies BlockControl, PREPARE_TIMEOUT_MS);
  }

  /** Unloads step `step`'s version `ref` in every worker thread. */
  async retire(step: number, ref: string): Promise<void> {
    await this.#pool.control({ kind: 'retire', step, ref } satisfies BlockControl, PREPARE_TIMEOUT_MS);
  }

  /**
   * Every worker's shadow-topic records, taken from their buffers (each worker hands a record over once).
   * Rejects when the pool is closed or a worker did not answer within `timeoutMs` (MODEL_TIMEOUT); the
   * records of those that did answer are then lost.
   */
  async collectShadowRecords(settle: boolean, timeoutMs: number): Promise<ShadowRecord[]> {
    const replies = await this.#pool.control<ShadowRecord[]>({ kind: 'shadow-records', settle } satisfies BlockControl, timeoutMs);
    return replies.flat();
  }

  /** Every worker's metrics (prom-client JSON), asked for now; a worker that does not answer in time is left out. */
  collectMetrics(timeoutMs?: number): Promise<unknown[]> {
    return this.#pool.collectMetrics(timeoutMs);
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}
