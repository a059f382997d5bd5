/**
 * A model actor: one per resolved model version. Callers `infer` one row at a time; rows are micro-batched
 * (see batcher.ts), each batch is one `ModelRunner` call, and the batch's outputs are split back to each
 * caller. A failing batch does not fail its neighbours: a retryable failure is retried once, a row-level
 * failure is isolated by bisection, and only the offending rows reject.
 */
import { asyncScheduler, type Observable, type SchedulerLike } from 'rxjs';
import {
  AbortedError, ActorStoppedError, ConfigError, MailboxFullError, ModelExecutionError, ModelInputError,
  ModelIntegrityError, ModelNotFoundError, ModelSignatureError, VerdictError, asVerdictError,
} from '../core/errors.js';
import { silentLogger, type Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { BatchResult, BatchTask, ModelRunner } from '../models/runner.js';
import { allocate, checkRow, packRows, rowSize, unpackRows } from '../models/tensors.js';
import type { ResolvedModel, RowInputs, RowOutputs, TensorSpec } from '../models/types.js';
import { Lifecycle, type ActorStatus } from './actor.js';
import { MicroBatcher, type BatchPolicy, type BatchTicket } from './batcher.js';

export interface ModelActorOptions {
  readonly model: ResolvedModel;
  /** Where batches run. Shared between actors, so the actor never closes it. */
  readonly runner: ModelRunner;
  readonly scheduler?: SchedulerLike;
  readonly maxBatchSize?: number;
  readonly maxDelayMs?: number;
  readonly mailboxCapacity?: number;
  readonly maxInflightBatches?: number;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

interface Pending {
  readonly row: RowInputs;
  readonly resolve: (outputs: RowOutputs) => void;
  readonly reject: (error: VerdictError) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  ticket: BatchTicket<Pending> | undefined;
}

// Errors that say the model itself cannot run: every row would fail the same way, so bisecting is pointless
// and the actor fails as a whole.
const MODEL_UNUSABLE: ReadonlySet<string> = new Set([
  ModelNotFoundError.code, ModelIntegrityError.code, ModelSignatureError.code,
]);
// Errors one row's values can cause: only these are worth bisecting to find the row. Anything else (a closed
// pool, a full queue after its retry) would fail every half the same way.
const ROW_SPECIFIC: ReadonlySet<string> = new Set([ModelInputError.code, ModelExecutionError.code]);

const COMPONENT = 'model_actor';

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigError(`${name} must be a positive integer, got ${value}`, { details: { field: name } });
  }
  return value;
}

function compilePolicy(options: ModelActorOptions): BatchPolicy {
  const maxDelayMs = options.maxDelayMs ?? 2;
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < 0) {
    throw new ConfigError(`maxDelayMs must be a finite number >= 0, got ${maxDelayMs}`, { details: { field: 'maxDelayMs' } });
  }
  return {
    maxBatchSize: positiveInt('maxBatchSize', options.maxBatchSize ?? 64),
    maxDelayMs,
    mailboxCapacity: positiveInt('mailboxCapacity', options.mailboxCapacity ?? 8192),
    maxInflightBatches: positiveInt('maxInflightBatches', options.maxInflightBatches ?? 2),
  };
}

export class ModelActor {
  readonly model: ResolvedModel;
  readonly #runner: ModelRunner;
  readonly #batcher: MicroBatcher<Pending>;
  readonly #lifecycle = new Lifecycle();
  readonly #inputs: readonly TensorSpec[];
  readonly #inputSizes: readonly number[];
  readonly #outputs: readonly TensorSpec[];
  readonly #outputNames: readonly string[];
  readonly #metrics: Metrics | undefined;
  // Label children resolved once: the depth is set on every row, and a labelled set hashes its labels.
  readonly #depthGauge: { set(value: number): void } | undefined;
  readonly #batchSizes: { observe(value: number): void } | undefined;
  readonly #inferenceSeconds: { observe(value: number): void } | undefined;
  readonly #log: Logger;
  readonly #capacity: number;
  #stopping: Promise<void> | undefined;

  constructor(options: ModelActorOptions) {
    this.model = options.model;
    this.#runner = options.runner;
    this.#inputs = options.model.manifest.inputs;
    // Computed once: a model whose rows have no fixed size fails here, not on the first event.
    this.#inputSizes = this.#inputs.map(rowSize);
    this.#outputs = options.model.manifest.outputs;
    this.#outputNames = this.#outputs.map((o) => o.name);
    this.#metrics = options.metrics;
    const labels = { model: options.model.ref };
    this.#depthGauge = options.metrics?.mailboxDepth.labels(labels);
    this.#batchSizes = options.metrics?.batchSize.labels(labels);
    this.#inferenceSeconds = options.metrics?.inferenceSeconds.labels(labels);
    this.#log = (options.logger ?? silentLogger).child({ component: COMPONENT, model: options.model.ref });
    const policy = compilePolicy(options);
    this.#capacity = policy.mailboxCapacity;
    this.#batcher = new MicroBatcher<Pending>(
      policy,
      options.scheduler ?? asyncScheduler,
      (batch) => this.#runBatch(batch),
    );
  }

  get status(): ActorStatus {
    return this.#lifecycle.status;
  }

  get status$(): Observable<ActorStatus> {
    return this.#lifecycle.status$;
  }

  /** Rows waiting in the mailbox (not those in running batches). */
  get queued(): number {
    return this.#batcher.queued;
  }

  /**
   * Loads the model before traffic arrives by running one all-zero row, so the first real batch does not
   * pay for session creation. Rows sent before it finishes are accepted and batched as usual. Rejects with
   * the typed error if the warm-up fails.
   */
  async start(): Promise<void> {
    if (this.#lifecycle.status !== 'starting') return;
    const zeros = this.#inputs.map((spec, i) => ({
      name: spec.name, type: spec.type, dims: [1, ...spec.shape.slice(1).map(Number)],
      data: allocate(spec.type, this.#inputSizes[i]!),
    }));
    try {
      await this.#runner.run(this.#task(zeros));
    } catch (error) {
      const typed = this.#count(asVerdictError(error));
      // Only a model that cannot load fails the actor; a crashed worker is worth another start().
      if (MODEL_UNUSABLE.has(typed.code)) this.#fail(typed);
      throw typed;
    }
    this.#lifecycle.moveTo('running');
  }

  infer(row: RowInputs, signal?: AbortSignal): Promise<RowOutputs> {
    if (!this.#lifecycle.accepting) {
      return Promise.reject(this.#count(new ActorStoppedError(`model actor ${this.model.ref} is ${this.status}`, {
        details: { model: this.model.ref, status: this.status },
      })));
    }
    if (signal?.aborted === true) return Promise.reject(this.#count(this.#aborted(signal)));
    try {
      checkRow(this.#inputs, this.#inputSizes, row);
    } catch (error) {
      return Promise.reject(this.#count(asVerdictError(error)));
    }
    return new Promise<RowOutputs>((resolve, reject) => {
      const pending: Pending = { row, resolve, reject, signal, onAbort: undefined, ticket: undefined };
      // Listen before offering: the offer may dispatch at once, and dispatch detaches the listener.
      if (signal !== undefined) {
        pending.onAbort = () => {
          if (pending.ticket !== undefined && this.#batcher.cancel(pending.ticket)) {
            this.#setDepth();
            reject(this.#count(this.#aborted(signal)));
          }
        };
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      pending.ticket = this.#batcher.offer(pending);
      if (pending.ticket === undefined) {
        this.#detach(pending);
        reject(this.#count(new MailboxFullError(`model actor ${this.model.ref} mailbox is full`, {
          details: { model: this.model.ref, capacity: this.#capacity },
        })));
        return;
      }
      this.#setDepth();
    });
  }

  /** Stops accepting rows, runs every queued row, waits for running batches, then reports 'stopped'. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (!this.#lifecycle.moveTo('draining')) return;
      await this.#batcher.drain();
      this.#lifecycle.moveTo('stopped');
      this.#log.info('model actor stopped');
    })();
    return this.#stopping;
  }

  async #runBatch(batch: Pending[]): Promise<void> {
    for (const pending of batch) this.#detach(pending);
    this.#setDepth();
    await this.#settle(batch, false);
  }

  /** Runs `batch` and settles every row in it. Never rejects. */
  async #settle(batch: Pending[], retried: boolean): Promise<void> {
    if (this.#lifecycle.status === 'failed') {
      this.#rejectAll(batch, new ActorStoppedError(`model actor ${this.model.ref} has failed`));
      return;
    }
    let outputs: BatchResult['outputs'];
    const started = performance.now();
    try {
      const task = this.#task(packRows(this.#inputs, batch.map((p) => p.row)));
      this.#batchSizes?.observe(batch.length);
      ({ outputs } = await this.#runner.run(task));
      this.#inferenceSeconds?.observe((performance.now() - started) / 1000);
    } catch (error) {
      const typed = asVerdictError(error);
      if (typed.retryable && !retried) {
        this.#log.warn({ err: typed, rows: batch.length }, 'batch failed with a retryable error; retrying once');
        await this.#settle(batch, true);
      } else if (MODEL_UNUSABLE.has(typed.code)) {
        this.#fail(typed);
        this.#rejectAll(batch, typed);
      } else if (ROW_SPECIFIC.has(typed.code) && batch.length > 1) {
        // One bad row must not fail its neighbours: split until the failing rows are alone. Halves run one
        // after the other so isolation never adds more than one task to the pool's queue.
        const mid = batch.length >>> 1;
        await this.#settle(batch.slice(0, mid), false);
        await this.#settle(batch.slice(mid), false);
      } else {
        this.#rejectAll(batch, typed);
      }
      return;
    }
    let rows: RowOutputs[];
    try {
      rows = unpackRows(this.#outputs, outputs, batch.length);
    } catch (error) {
      // The whole result is malformed; re-running halves would get the same shape back.
      this.#rejectAll(batch, asVerdictError(error));
      return;
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(rows[i]!);
  }

  #task(inputs: BatchTask['inputs']): BatchTask {
    return {
      modelPath: this.model.path, modelSha256: this.model.manifest.sha256, inputs, outputNames: this.#outputNames,
    };
  }

  /** The model cannot run at all: fail the actor and everything waiting in it. */
  #fail(error: VerdictError): void {
    if (!this.#lifecycle.moveTo('failed')) return;
    this.#log.error({ err: error }, 'model actor failed');
    const queued = this.#batcher.takeAll();
    for (const pending of queued) this.#detach(pending);
    this.#setDepth();
    this.#rejectAll(queued, error);
  }

  #rejectAll(batch: readonly Pending[], error: VerdictError): void {
    for (const pending of batch) pending.reject(this.#count(error));
  }

  #detach(pending: Pending): void {
    if (pending.onAbort !== undefined) pending.signal?.removeEventListener('abort', pending.onAbort);
    pending.onAbort = undefined;
  }

  #aborted(signal: AbortSignal): AbortedError {
    return new AbortedError(`inference on ${this.model.ref} aborted before dispatch`, {
      cause: signal.reason, details: { model: this.model.ref },
    });
  }

  /** Every error a caller sees is counted once per row, by code. */
  #count<E extends VerdictError>(error: E): E {
    this.#metrics?.errors.inc({ component: COMPONENT, code: error.code });
    return error;
  }

  #setDepth(): void {
    this.#depthGauge?.set(this.#batcher.queued);
  }
}
