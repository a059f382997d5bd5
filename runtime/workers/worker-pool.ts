/**
 * The one worker pool: a fixed Piscina pool of worker threads running one task file, used by the inference
 * runner (model batches) and the block pool (whole blocks). It owns what both need once:
 * - typed tasks and replies: a task answers in the `WorkerReply` envelope, and `run` resolves with its
 *   value or rejects with the typed error the worker sent, rebuilt;
 * - the classification of Piscina's own errors (below);
 * - the metrics channel: every worker answers `collectMetrics` with its registry; a thread that died is
 *   still counted, its counters and histograms as it last answered (see `collectMetrics`);
 * - the control channel: `control(message)` reaches every worker thread, and resolves once each answered
 *   (a model version loaded everywhere before it takes traffic, runtime/live-models.ts).
 *
 * Errors of `run` that Piscina raises itself, not the task:
 * - the worker died under the task (process.exit, a native abort, OOM): `WorkerCrashedError` (retryable),
 *   counted in `verdict_worker_restarts_total` and logged at warn; Piscina replaces the worker;
 * - the queue is at `maxQueue`: `MailboxFullError` (retryable);
 * - the pool is closed or closing: `ActorStoppedError`.
 */
import { randomUUID } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { SchedulerAction } from 'rxjs';
import { preciseScheduler, type Clock } from '../../core/clock.js';
import {
  ActorStoppedError, InternalError, MailboxFullError, ModelTimeoutError, VerdictError, WorkerCrashedError, asVerdictError,
} from '../../core/errors.js';
import { componentLogger, silentLogger, type Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { ControlReply, ControlRequest, MetricsReply, MetricsRequest, PoolWorkerData, WorkerReply } from './protocol.js';

/** How often a control request is sent again to threads that have not answered it (ms). */
const CONTROL_RESEND_MS = 250;

export interface WorkerPoolOptions<Data extends object> {
  /** What the workers do, for messages and logs: `inference`, `block`. */
  readonly kind: string;
  /** The task file (its default export runs a task; named exports are other task names). */
  readonly filename: string | URL;
  /** Worker threads, started at once and kept (they hold loaded models: idling them out would reload them). */
  readonly threads: number;
  /** Tasks waiting for a free worker before `run` rejects with MailboxFullError. Default: unbounded. */
  readonly maxQueue?: number;
  /** Tasks one worker runs at once (async tasks interleave on its event loop). */
  readonly concurrentTasksPerWorker: number;
  /** The worker's own start data; the pool adds `metricsChannel` and `controlChannel`. Must be structured-cloneable. */
  readonly workerData: Data;
  /** The type an unknown error of a task becomes. Default InternalError. */
  readonly fallback?: typeof VerdictError;
  /** Counts dead workers (`workerRestarts`). */
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /** Times the metrics collection's wait for worker replies. Default: the production clock. */
  readonly clock?: Clock;
}

export interface RunOptions {
  /** Buffers moved to the worker with the task (see `transferList`); they are unusable here afterwards. */
  readonly transfer?: readonly ArrayBuffer[];
  /** A named export of the task file to run instead of the default one. */
  readonly name?: string;
}

type MetricJson = Array<MetricObjectWithValues<MetricValue<string>>>;

/** What of a dead thread's metrics is kept: counters and histograms only (a gauge is a state, gone with it). */
function countsOnly(json: unknown): MetricJson {
  return (json as MetricJson).filter((m) => { const type = String(m.type); return type === 'counter' || type === 'histogram'; });
}

export class WorkerPool<Task, Result> {
  readonly #pool: Piscina<Task, WorkerReply<Result>>;
  readonly #channel: BroadcastChannel;
  readonly #control: BroadcastChannel;
  readonly #options: WorkerPoolOptions<object>;
  readonly #log: Logger;
  readonly #clock: Clock;
  #requests = 0;
  #closed = false;
  /** Each thread's last metrics answer, by thread id, kept until the thread is gone. */
  readonly #lastAnswers = new Map<number, unknown>();
  /** The counters and histograms of the threads that died, as they last answered, folded into one. */
  #retired: Promise<MetricJson | undefined> = Promise.resolve(undefined);

  constructor(options: WorkerPoolOptions<object>) {
    this.#options = options;
    this.#log = componentLogger(options.logger ?? silentLogger, `${options.kind}_pool`);
    this.#clock = options.clock ?? preciseScheduler;
    const metricsChannel = `verdict-metrics-${randomUUID()}`;
    this.#channel = new BroadcastChannel(metricsChannel);
    this.#channel.unref();
    const controlChannel = `verdict-control-${randomUUID()}`;
    this.#control = new BroadcastChannel(controlChannel);
    this.#control.unref();
    this.#pool = new Piscina<Task, WorkerReply<Result>>({
      filename: options.filename instanceof URL ? options.filename.href : options.filename,
      minThreads: options.threads,
      maxThreads: options.threads,
      idleTimeout: Infinity,
      ...(options.maxQueue === undefined ? {} : { maxQueue: options.maxQueue }),
      concurrentTasksPerWorker: options.concurrentTasksPerWorker,
      // 'sync' parks an idle worker in Atomics.wait, which stops its event loop: it could not answer a
      // metrics request, nor run a timer, between tasks.
      atomics: 'async',
      workerData: { ...options.workerData, metricsChannel, controlChannel } satisfies PoolWorkerData,
    });
    // Piscina emits 'error' for a worker failure with no task attached; unhandled, it would kill the process.
    this.#pool.on('error', (error: unknown) => {
      this.#log.error({ err: error }, `${options.kind} worker failed outside a task`);
    });
  }

  /** Worker threads alive now (a dead worker is replaced). */
  get threads(): number {
    return this.#pool.threads.length;
  }

  /** Runs one task in a worker. Resolves with its value; rejects with a VerdictError (see the module doc). */
  async run(task: Task, options: RunOptions = {}): Promise<Result> {
    if (this.#closed) throw new ActorStoppedError(`the ${this.#options.kind} pool is closed`);
    let reply: WorkerReply<Result>;
    try {
      reply = await this.#pool.run(task, {
        ...(options.transfer === undefined ? {} : { transferList: [...options.transfer] }),
        ...(options.name === undefined ? {} : { name: options.name }),
      });
    } catch (error) {
      throw this.#poolError(error);
    }
    if (!reply.ok) throw asVerdictError(reply.error, this.#options.fallback ?? InternalError);
    return reply.value;
  }

  /** Runs the named task once per worker thread (e.g. a warm-up), all at once. */
  runOnEach<T extends Task>(name: string, task: T): Promise<Result[]> {
    const threads = this.#pool.threads.length || this.#options.threads;
    return Promise.all(Array.from({ length: threads }, () => this.run(task, { name })));
  }

  /**
   * Every worker's metrics (prom-client JSON), asked for now; a worker that does not answer within `timeoutMs`
   * is left out. After the live threads' answers comes, once a thread has died, one more entry: the counters
   * and histograms of every dead thread as it last answered. A registry dies with its thread, and without
   * them the sums a scrape shows would go backwards when one does (Prometheus reads that as a reset); what a
   * thread counted after its last answer is lost with it.
   */
  collectMetrics(timeoutMs = 500): Promise<unknown[]> {
    const id = ++this.#requests;
    const expected = this.#pool.threads.length;
    if (expected === 0 || this.#closed) return Promise.resolve([]);
    return new Promise((resolve) => {
      const replies = new Map<number, unknown>();
      const done = (): void => {
        timer.unsubscribe();
        this.#channel.removeEventListener('message', onMessage);
        void this.#retire(replies).then((retired) => resolve(retired === undefined ? [...replies.values()] : [...replies.values(), retired]));
      };
      const onMessage = (event: unknown): void => {
        const reply = (event as { data?: MetricsReply }).data;
        if (reply?.type !== 'metrics' || reply.id !== id) return;
        replies.set(reply.threadId, reply.json);
        if (replies.size >= expected) done();
      };
      const timer = this.#clock.schedule(done, timeoutMs);
      this.#channel.addEventListener('message', onMessage);
      this.#channel.postMessage({ type: 'collect', id } satisfies MetricsRequest);
    });
  }

  /**
   * Sends `message` to every worker thread alive now (the task file answers it with `serveControl`) and
   * resolves with one value per thread once each has answered; the request is sent again every 250 ms to
   * threads that have not (one still starting misses it), and each thread runs it once. Rejects with the first worker's typed error,
   * or MODEL_TIMEOUT naming how many threads did not answer within `timeoutMs` (default 30,000 ms).
   */
  control<R>(message: unknown, timeoutMs = 30_000): Promise<R[]> {
    const id = ++this.#requests;
    const expected = this.#pool.threads.length;
    if (this.#closed) return Promise.reject(new ActorStoppedError(`the ${this.#options.kind} pool is closed`));
    if (expected === 0) return Promise.resolve([]);
    return new Promise<R[]>((resolve, reject) => {
      const replies = new Map<number, R>();
      const finish = (error?: VerdictError): void => {
        timer.unsubscribe();
        resend.unsubscribe();
        this.#control.removeEventListener('message', onMessage);
        if (error === undefined) resolve([...replies.values()]);
        else reject(error);
      };
      const onMessage = (event: unknown): void => {
        const reply = (event as { data?: ControlReply }).data;
        if (reply?.type !== 'control-reply' || reply.id !== id) return;
        if (!reply.reply.ok) {
          finish(asVerdictError(reply.reply.error, this.#options.fallback ?? InternalError));
          return;
        }
        replies.set(reply.threadId, reply.reply.value as R);
        if (replies.size >= expected) finish();
      };
      const timer = this.#clock.schedule(() => finish(new ModelTimeoutError(
        `${expected - replies.size} of ${expected} ${this.#options.kind} workers did not answer within ${timeoutMs} ms`,
        { details: { kind: this.#options.kind, expected, answered: replies.size, timeoutMs } },
      )), timeoutMs);
      const request = { type: 'control', id, message } satisfies ControlRequest;
      const channel = this.#control;
      const resend = this.#clock.schedule(function again(this: SchedulerAction<undefined>) {
        channel.postMessage(request);
        this.schedule(undefined, CONTROL_RESEND_MS);
      }, CONTROL_RESEND_MS);
      this.#control.addEventListener('message', onMessage);
      this.#control.postMessage(request);
    });
  }

  /**
   * Keeps `replies` as their threads' last answers, and folds the last answer of every thread no longer in the
   * pool into the retired counts (one entry however many died, so they take no more room than one registry).
   */
  #retire(replies: ReadonlyMap<number, unknown>): Promise<MetricJson | undefined> {
    for (const [threadId, json] of replies) this.#lastAnswers.set(threadId, json);
    const alive = new Set(this.#pool.threads.map((t) => t.threadId));
    const dead: MetricJson[] = [];
    for (const [threadId, json] of this.#lastAnswers) {
      if (alive.has(threadId)) continue;
      this.#lastAnswers.delete(threadId);
      dead.push(countsOnly(json));
    }
    if (dead.length > 0) {
      // Chained, so that two collections folding at once each fold onto the other's result.
      this.#retired = this.#retired.then((retired) => AggregatorRegistry.aggregate(retired === undefined ? dead : [retired, ...dead]).getMetricsAsJSON() as Promise<MetricJson>);
    }
    return this.#retired;
  }

  /** Lets running and queued tasks finish, then stops the workers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.close();
    this.#channel.close();
    this.#control.close();
  }

  /** Stops the workers now: running and queued tasks reject with ActorStoppedError. */
  async destroy(): Promise<void> {
    this.#closed = true;
    await this.#pool.destroy();
    this.#channel.close();
    this.#control.close();
  }

  /** Errors raised by Piscina itself, not by the task: a dead worker, a full queue, a closing pool. */
  #poolError(error: unknown): VerdictError {
    if (error instanceof VerdictError) return error;
    const message = error instanceof Error ? error.message : String(error);
    if (message.includes('Task queue is at limit')) {
      return new MailboxFullError(`the ${this.#options.kind} pool queue is full`, { cause: error });
    }
    if (message.includes('Terminating worker thread') || this.#closed) {
      return new ActorStoppedError(`the ${this.#options.kind} pool was closed during the task`, { cause: error });
    }
    // Anything else means the worker died under the task (process.exit, an abort in native code, OOM).
    this.#options.metrics?.workerRestarts.inc();
    this.#log.warn({ err: error }, `${this.#options.kind} worker died during a task; Piscina replaces it`);
    return new WorkerCrashedError(`${this.#options.kind} worker died: ${message}`, { cause: error });
  }
}
