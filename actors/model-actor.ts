/**
 * A model actor: one per resolved model version. Callers send one row (`infer`) or a block of rows
 * (`inferBlock`, what the router sends for a whole block of events); rows are micro-batched (see
 * batcher.ts), each batch is one `ModelRunner` call, and its outputs are written back to each caller's
 * block. A failing batch does not fail its neighbours: it runs through the one failure mechanism
 * (core/isolate.ts): a retryable failure is retried once through core/retry.ts, a row-level failure is
 * isolated by bisection, and only the offending rows get the error.
 *
 * A worker thread that dies under a batch (MODEL_WORKER_CRASHED) is treated as a row-level failure: after
 * its retry the batch is bisected, so the row that kills the runtime ends alone with WorkerCrashedError and
 * its neighbours get their outputs. The per-event core then dead-letters that row's event (see
 * pipeline/decide/decide-event.ts): a crash is not a model verdict, and a poison input must never be
 * approved by a fail-open incomplete policy. The runtime.mode: blocks placement does the same per record.
 *
 * Each actor owns its model version's circuit breaker (circuit-breaker.ts): while it is open, rows are
 * refused at once with MODEL_CIRCUIT_OPEN instead of queueing.
 */
import type { Observable } from 'rxjs';
import { preciseScheduler, type Clock } from '../core/clock.js';
import {
  AbortedError, ActorStoppedError, InternalError, MailboxFullError, ModelCircuitOpenError, ModelExecutionError,
  ModelInputError, ModelIntegrityError, ModelNotFoundError, ModelOutputError, ModelSignatureError, VerdictError,
  WorkerCrashedError, asVerdictError,
} from '../core/errors.js';
import { runIsolated, type Isolation } from '../core/isolate.js';
import { parseOptions } from '../core/options.js';
import { componentLogger, silentLogger, type Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { BatchResult, BatchTask, ModelRunner } from '../models/runner.js';
import { allocate, checkOutputShapes, checkRow, packRows, rowSize, unpackRows } from '../models/tensors.js';
import type { ResolvedModel, RowInputs, RowOutputs, RowResults, TensorSpec } from '../models/types.js';
import { Lifecycle, type LifecycleState } from '../core/lifecycle.js';
import { batchPolicySchema, type CircuitBreakerPolicy } from '../config/pipeline-schema.js';
import { Withdrawal } from './withdrawal.js';
import { MicroBatcher, type BatchPolicy, type BatchTicket } from './batcher.js';
import { batchRows, batchRowsOf, rowRanges, splitRows, type Block, type RowRange } from './row-ranges.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { modelBreaker } from './model-breaker.js';

export interface ModelActorOptions {
  readonly model: ResolvedModel;
  /** Where batches run. Shared between actors, so the actor never closes it. */
  readonly runner: ModelRunner;
  /** Batching delays and the inference-time histogram. Default: the production clock. */
  readonly scheduler?: Clock;
  readonly maxBatchSize?: number;
  readonly maxDelayMs?: number;
  readonly mailboxCapacity?: number;
  readonly maxInflightBatches?: number;
  /** The model version's circuit breaker; defaults in `circuitBreakerSchema` (5 failures, 5,000 ms). */
  readonly circuitBreaker?: Partial<CircuitBreakerPolicy>;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

// Errors that say the model itself cannot run: every row would fail the same way, so bisecting is pointless
// and the actor fails as a whole.
const MODEL_UNUSABLE: ReadonlySet<string> = new Set([
  ModelNotFoundError.code, ModelIntegrityError.code, ModelSignatureError.code,
]);
// Errors one row's values can cause: only these are worth bisecting to find the row. Anything else (a closed
// pool, a full queue after its retry) would fail every half the same way. A dead worker thread is among them:
// a native crash is most often caused by one input, and bisection finds it (a crash that was not the rows'
// fault costs a few more runs, each of which then succeeds). So is an output that came back in another shape
// than the manifest's (checkOutputShapes): a shape computed from an input value breaks only the batches
// holding that value.
const ROW_SPECIFIC: ReadonlySet<string> = new Set([
  ModelInputError.code, ModelExecutionError.code, ModelOutputError.code, WorkerCrashedError.code,
]);
// Batch failures that count against the circuit breaker: the model (or its runtime) failed, not the rows'
// input, and not a shutdown or a full queue.
const BREAKER_FAILURES: ReadonlySet<string> = new Set([ModelExecutionError.code, ModelOutputError.code, WorkerCrashedError.code]);

const COMPONENT = 'model_actor';

export class ModelActor {
  readonly model: ResolvedModel;
  readonly #runner: ModelRunner;
  readonly #batcher: MicroBatcher<RowRange>;
  readonly #lifecycle = new Lifecycle();
  readonly #clock: Clock;
  readonly #inputs: readonly TensorSpec[];
  readonly #inputSizes: readonly number[];
  readonly #outputs: readonly TensorSpec[];
  readonly #outputNames: readonly string[];
  readonly #metrics: Metrics | undefined;
  // Label children resolved once: the depth is set on every row, and a labelled set hashes its labels.
  readonly #depthGauge: { set(value: number): void } | undefined;
  readonly #batchSizes: { observe(value: number): void } | undefined;
  readonly #inferenceSeconds: { observe(value: number): void } | undefined;
  readonly #invalidOutputs: { inc(value?: number): void } | undefined;
  readonly #log: Logger;
  readonly #capacity: number;
  readonly #maxBatchSize: number;
  readonly #breaker: CircuitBreaker;
  readonly #rowsWithdrawn: { inc(value?: number): void } | undefined;
  /** How a batch (an array of rowRanges) is retried, cut and run: see core/isolate.ts. */
  readonly #isolation: Isolation<readonly RowRange[], BatchResult['outputs']>;
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
    this.#invalidOutputs = options.metrics?.invalidOutputs.labels(labels);
    this.#log = componentLogger(options.logger ?? silentLogger, COMPONENT, { model: options.model.ref });
    this.#rowsWithdrawn = options.metrics?.rowsWithdrawn.labels(labels);
    this.#clock = options.scheduler ?? preciseScheduler;
    const { maxBatchSize, maxDelayMs, mailboxCapacity, maxInflightBatches } = options;
    const policy: BatchPolicy = parseOptions(batchPolicySchema, { maxBatchSize, maxDelayMs, mailboxCapacity, maxInflightBatches }, 'model actor options');
    this.#breaker = modelBreaker(options.model.ref, options.circuitBreaker ?? {}, this.#clock, options.metrics, this.#log);
    this.#isolation = {
      size: batchRows,
      halve: (batch) => splitRows(batch, batchRows(batch) >>> 1),
      run: (batch) => this.#runOnce(batch),
      isolatable: (error) => ROW_SPECIFIC.has(error.code),
      fallback: ModelExecutionError,
      onRetry: (error) => this.#log.warn({ err: error }, 'batch failed with a retryable error; retrying once'),
    };
    this.#capacity = policy.mailboxCapacity;
    // Beside the depth gauge, so a scrape can hold each depth against its bound.
    options.metrics?.mailboxCapacity.set(labels, policy.mailboxCapacity);
    this.#maxBatchSize = policy.maxBatchSize;
    const queueWait = options.metrics?.queueWait.labels(labels);
    this.#batcher = new MicroBatcher<RowRange>(
      policy,
      this.#clock,
      (batch) => this.#runBatch(batch),
      rowRanges,
      queueWait === undefined ? undefined : (ms) => queueWait.observe(ms / 1000),
    );
  }

  get status(): LifecycleState {
    return this.#lifecycle.state;
  }

  get status$(): Observable<LifecycleState> {
    return this.#lifecycle.state$;
  }

  /** The circuit breaker's state now (see circuit-breaker.ts). */
  get circuitState(): CircuitBreaker['state'] {
    return this.#breaker.state;
  }

  /**
   * A step timed out waiting for this actor (the step executor tells it): counts against the circuit breaker
   * like a failed batch, since a model that answers too late is as unusable for the decision.
   */
  reportTimeout(): void {
    this.#breaker.failure();
  }

  /** Rows waiting in the mailbox (not those in running batches). */
  get queued(): number {
    return this.#batcher.queued;
  }

  /**
   * Loads the model before traffic arrives by running one all-zero row and one all-zero full batch, so the
   * first real batch does not pay for session creation. Rows sent before it finishes are accepted and
   * batched as usual. Rejects with the typed error if the warm-up fails.
   */
  async start(): Promise<void> {
    if (this.#lifecycle.state !== 'starting') return;
    const zeros = (rows: number) => this.#inputs.map((spec, i) => ({
      name: spec.name, type: spec.type, dims: [rows, ...spec.shape.slice(1).map(Number)],
      data: allocate(spec.type, rows * this.#inputSizes[i]!),
    }));
    try {
      // One row loads the session; a full batch then sizes onnxruntime's buffers for the largest batch, so
      // the first full batch of real traffic does not pay for it against its step timeout.
      await this.#runner.run(this.#task(zeros(1)));
      if (this.#maxBatchSize > 1) await this.#runner.run(this.#task(zeros(this.#maxBatchSize)));
    } catch (error) {
      const typed = this.#count(asVerdictError(error, ModelExecutionError));
      // Only a model that cannot load fails the actor; a crashed worker is worth another start().
      if (MODEL_UNUSABLE.has(typed.code)) this.#fail(typed);
      throw typed;
    }
    this.#lifecycle.moveTo('running');
  }

  /** One row: its outputs, or the typed error of its row. */
  async infer(row: RowInputs, signal?: AbortSignal | Withdrawal): Promise<RowOutputs> {
    const result = await this.inferBlock([row], signal);
    const outputs = result.outputs[0];
    if (outputs !== undefined) return outputs;
    // Neither is a bug in the actor, not a failure of the model.
    throw result.errors[0] ?? new InternalError(`model actor ${this.model.ref} settled a row with neither outputs nor error`);
  }

  /**
   * Many rows in one call: they are micro-batched like single rows (a block larger than a batch is split),
   * and the call resolves once every row has its outputs or its typed error. Never rejects. When `signal`
   * aborts (or the Withdrawal is withdrawn), rows not yet dispatched to the runner settle as `ABORTED`.
   */
  inferBlock(rows: readonly RowInputs[], signal?: AbortSignal | Withdrawal): Promise<RowResults> {
    const n = rows.length;
    const withdrawal = signal === undefined || signal instanceof Withdrawal ? signal : Withdrawal.from(signal);
    const outputs = new Array<RowOutputs | undefined>(n).fill(undefined);
    const errors = new Array<VerdictError | undefined>(n).fill(undefined);
    const settledNow = (error: VerdictError): Promise<RowResults> => {
      this.#count(error, n);
      return Promise.resolve({ outputs, errors: errors.fill(error) });
    };
    if (!this.#lifecycle.accepting) {
      return settledNow(new ActorStoppedError(`model actor ${this.model.ref} is ${this.status}`, {
        details: { model: this.model.ref, status: this.status },
      }));
    }
    if (withdrawal?.withdrawn === true) return settledNow(this.#aborted(withdrawal));
    // An open breaker refuses the rows without queueing them: they would only wait for a model that keeps
    // failing, holding their join until its deadline.
    if (!this.#breaker.accepting) return settledNow(this.#circuitOpen());
    return new Promise<RowResults>((resolve) => {
      const block: Block = { rows: [...rows], outputs, errors, unsettled: n, resolve, withdrawal };
      // Rows of the wrong shape fail alone, before queuing; the valid runs between them queue as rowRanges.
      const runs: RowRange[] = [];
      let start = 0;
      for (let i = 0; i <= n; i++) {
        if (i < n) {
          try {
            block.rows[i] = checkRow(this.#inputs, this.#inputSizes, rows[i]!, i);
            continue;
          } catch (error) {
            this.#settleRow(block, i, undefined, this.#count(asVerdictError(error, ModelInputError)));
          }
        }
        if (i > start) runs.push({ block, start, end: i });
        start = i + 1;
      }
      if (n === 0) resolve({ outputs, errors });
      const tickets: BatchTicket<RowRange>[] = [];
      for (const run of runs) {
        const ticket = this.#batcher.offer(run);
        if (ticket === undefined) {
          this.#settleRange(block, run.start, run.end, new MailboxFullError(`model actor ${this.model.ref} mailbox is full`, {
            details: { model: this.model.ref, capacity: this.#capacity },
          }));
        } else {
          tickets.push(ticket);
        }
      }
      if (withdrawal !== undefined && block.unsettled > 0) {
        // The caller gave up (its step timed out, see runtime/step-executor.ts): rows not yet dispatched are
        // withdrawn from the batcher and never run, which under overload is real work saved.
        withdrawal.onWithdraw(() => {
          let withdrawn = 0;
          for (const ticket of tickets) {
            // What is left of a row range the batcher has partly dispatched: its head is already running.
            const { start, end } = ticket.value.value;
            if (this.#batcher.cancel(ticket)) {
              withdrawn += end - start;
              this.#settleRange(block, start, end, this.#aborted(withdrawal));
            }
          }
          if (withdrawn > 0) this.#rowsWithdrawn?.inc(withdrawn);
          this.#setDepth();
        });
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
      // The version's state gauges go with it: after a swap unloads it, a scrape (and the admin status, which
      // reads the breaker gauge) must not show a version no longer loaded. Its counters stay, as counters do.
      const labels = { model: this.model.ref };
      this.#metrics?.mailboxDepth.remove(labels);
      this.#metrics?.mailboxCapacity.remove(labels);
      this.#metrics?.circuitState.remove(labels);
      this.#log.info('model actor stopped');
    })();
    return this.#stopping;
  }

  async #runBatch(batch: RowRange[]): Promise<void> {
    this.#setDepth();
    if (this.#lifecycle.state === 'failed') {
      this.#rejectAll(batch, new ActorStoppedError(`model actor ${this.model.ref} has failed`));
      return;
    }
    // Open, or half-open with its probe already out: rows queued before it opened are refused, not run.
    if (!this.#breaker.tryRun()) {
      this.#rejectAll(batch, this.#circuitOpen());
      return;
    }
    let produced = false;
    let failure: VerdictError | undefined;
    await runIsolated(batch, this.#isolation, (piece, outcome) => {
      if (outcome.ok) {
        produced = true;
        this.#settleOutputs(piece, outcome.value);
        return;
      }
      failure = outcome.error;
      if (MODEL_UNUSABLE.has(outcome.error.code)) this.#fail(outcome.error);
      if (outcome.error.code === ModelOutputError.code) this.#invalidOutputs?.inc(batchRows(piece));
      this.#rejectAll(piece, outcome.error);
    });
    // The batch as a whole: any rows with outputs mean the model works; none, with a model error, is a failure.
    if (produced) this.#breaker.success();
    else if (failure !== undefined && BREAKER_FAILURES.has(failure.code)) this.#breaker.failure();
    else this.#breaker.neutral();
  }

  /** One inference of the rows of `batch`: the runner's raw outputs, or its rejection. */
  async #runOnce(batch: readonly RowRange[]): Promise<BatchResult['outputs']> {
    if (this.#lifecycle.state === 'failed') throw new ActorStoppedError(`model actor ${this.model.ref} has failed`);
    const rows = batchRowsOf(batch);
    const started = this.#clock.now();
    const task = this.#task(packRows(this.#inputs, rows));
    this.#batchSizes?.observe(rows.length);
    const { outputs } = await this.#runner.run(task);
    this.#inferenceSeconds?.observe((this.#clock.now() - started) / 1000);
    // Checked here, inside the isolation, so that a batch whose shape one row broke is bisected down to it.
    checkOutputShapes(this.#outputs, outputs, rows.length);
    return outputs;
  }

  /** Writes a successful run's outputs back to each row of `batch`; a row whose outputs are unusable fails alone. */
  #settleOutputs(batch: readonly RowRange[], outputs: BatchResult['outputs']): void {
    const size = batchRows(batch);
    let unpacked: RowResults;
    try {
      unpacked = unpackRows(this.#outputs, outputs, size);
    } catch (error) {
      // The whole result is malformed; re-running halves would get the same shape back.
      this.#rejectAll(batch, asVerdictError(error, ModelExecutionError));
      return;
    }
    let r = 0;
    for (const s of batch) {
      for (let i = s.start; i < s.end; i++, r++) {
        const error = unpacked.errors[r];
        if (error === undefined) {
          this.#settleRow(s.block, i, unpacked.outputs[r], undefined);
          continue;
        }
        // Only this row's outputs are unusable: its neighbours in the batch keep theirs.
        if (error.code === ModelOutputError.code) this.#invalidOutputs?.inc();
        this.#log.debug({ err: error }, 'model output is not usable');
        this.#settleRow(s.block, i, undefined, this.#count(error));
      }
    }
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
    this.#setDepth();
    this.#rejectAll(queued, error);
  }

  #rejectAll(batch: readonly RowRange[], error: VerdictError): void {
    for (const s of batch) this.#settleRange(s.block, s.start, s.end, error);
  }

  #settleRange(block: Block, start: number, end: number, error: VerdictError): void {
    this.#count(error, end - start);
    for (let i = start; i < end; i++) this.#settleRow(block, i, undefined, error);
  }

  #settleRow(block: Block, i: number, outputs: RowOutputs | undefined, error: VerdictError | undefined): void {
    block.outputs[i] = outputs;
    block.errors[i] = error;
    if (--block.unsettled > 0) return;
    block.withdrawal?.onWithdraw(undefined);
    // Only the results: the block's rows, resolver and withdrawal handle are the actor's, not the caller's.
    block.resolve({ outputs: block.outputs, errors: block.errors });
  }

  #circuitOpen(): ModelCircuitOpenError {
    return new ModelCircuitOpenError(`the circuit breaker of ${this.model.ref} is open`, { details: { model: this.model.ref } });
  }

  #aborted(withdrawal: Withdrawal): AbortedError {
    return new AbortedError(`inference on ${this.model.ref} aborted before dispatch`, {
      cause: withdrawal.reason, details: { model: this.model.ref },
    });
  }

  /** Every error a caller sees is counted once per row, by code. */
  #count<E extends VerdictError>(error: E, rows = 1): E {
    this.#metrics?.errors.inc({ component: COMPONENT, code: error.code }, rows);
    return error;
  }

  #setDepth(): void {
    this.#depthGauge?.set(this.#batcher.queued);
  }
}
