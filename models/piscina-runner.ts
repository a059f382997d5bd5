/**
 * Runs batches in a Piscina pool of ONNX workers. Inputs are transferred to the worker and outputs
 * transferred back, so a batch crosses the thread boundary without copying its tensors.
 */
import { Piscina } from 'piscina';
import {
  ActorStoppedError, MailboxFullError, ModelExecutionError, VerdictError, WorkerCrashedError, asVerdictError,
} from '../core/errors.js';
import { componentLogger, silentLogger, type Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { z } from 'zod';
import { parseOptions } from '../core/options.js';
import {
  sessionThreadSchema, type BatchResult, type BatchTask, type ModelRunner, type SessionThreadOptions, type SessionThreads, type WorkerReply,
} from './runner.js';

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
  /** The task file; the compiled `onnx-worker.js` beside this module unless given (tests pass their own). */
  readonly filename?: string | URL;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

const DEFAULT_WORKER = new URL('./onnx-worker.js', import.meta.url);

export class PiscinaRunner implements ModelRunner {
  readonly #pool: Piscina<BatchTask, WorkerReply>;
  readonly #metrics: Metrics | undefined;
  readonly #log: Logger;
  #closed = false;

  constructor(options: PiscinaRunnerOptions = {}) {
    const { threads, maxQueue, intraOpThreads, interOpThreads, maxSessions } = parseOptions(piscinaRunnerSchema, options, 'inference pool options');
    const filename = options.filename ?? DEFAULT_WORKER;
    this.#metrics = options.metrics;
    this.#log = componentLogger(options.logger ?? silentLogger, 'piscina_runner');
    this.#pool = new Piscina<BatchTask, WorkerReply>({
      filename: filename instanceof URL ? filename.href : filename,
      // A fixed pool: workers hold loaded sessions, so letting them idle out would reload models later.
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
      maxQueue,
      workerData: { intraOpThreads, interOpThreads, maxSessions } satisfies SessionThreads,
    });
    // Piscina emits 'error' for a worker failure with no task attached; unhandled, it would kill the process.
    this.#pool.on('error', (error: unknown) => {
      this.#log.error({ err: error }, 'inference worker failed outside a task');
    });
  }

  /** Worker threads alive now (a crashed worker is replaced). */
  get threads(): number {
    return this.#pool.threads.length;
  }

  async run(task: BatchTask): Promise<BatchResult> {
    if (this.#closed) throw new ActorStoppedError('the inference pool is closed');
    const transferList: ArrayBuffer[] = [];
    for (const input of task.inputs) {
      // String tensors are plain arrays with no buffer to move: they are cloned.
      if (Array.isArray(input.data)) continue;
      const buffer = input.data.buffer as ArrayBuffer;
      // Two inputs viewing one buffer: listing it twice would make postMessage throw.
      if (!transferList.includes(buffer)) transferList.push(buffer);
    }
    let reply: WorkerReply;
    try {
      reply = await this.#pool.run(task, { transferList });
    } catch (error) {
      throw this.#poolError(error);
    }
    if (!reply.ok) throw asVerdictError(reply.error, ModelExecutionError);
    return { outputs: reply.outputs };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.close();
  }

  /** Errors raised by Piscina itself, not by the task: a dead worker, a full queue, a closing pool. */
  #poolError(error: unknown): VerdictError {
    if (error instanceof VerdictError) return error;
    const message = error instanceof Error ? error.message : String(error);
    if (message.includes('Task queue is at limit')) {
      return new MailboxFullError('the inference pool queue is full', { cause: error });
    }
    if (message.includes('Terminating worker thread')) {
      return new ActorStoppedError('the inference pool was closed during the batch', { cause: error });
    }
    // Anything else means the worker died under the task (process.exit, an abort in native code, OOM).
    this.#metrics?.workerRestarts.inc();
    this.#log.warn({ err: error }, 'inference worker died during a batch; Piscina replaces it');
    return new WorkerCrashedError(`inference worker died: ${message}`, { cause: error });
  }
}
