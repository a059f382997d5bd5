/**
 * Runs batches on the calling thread, with the same session cache and execution as the worker. For tests,
 * and for models so small that the Piscina round-trip would cost more than the inference itself.
 */
import { ActorStoppedError } from '../core/errors.js';
import { SessionCache, classifyOrtError, executeBatch } from './onnx-session.js';
import type { BatchResult, BatchTask, ModelRunner, SessionKey, SessionThreadOptions } from './runner.js';

/** ONNX Runtime's per-session threads and the session cache's size (`sessionThreadSchema`, models/runner.ts, where the defaults live). */
export type InThreadRunnerOptions = SessionThreadOptions;

/**
 * A `ModelRunner` on the calling thread: batches block it while they run. `run` rejects with the model's
 * typed errors (MODEL_INPUT_INVALID, MODEL_EXECUTION_FAILED, …), and with `ACTOR_STOPPED` after `close()`.
 */
export class InThreadRunner implements ModelRunner {
  readonly #cache: SessionCache;
  readonly #running = new Set<Promise<unknown>>();
  #closed = false;

  constructor(options: InThreadRunnerOptions = {}) {
    this.#cache = new SessionCache(options);
  }

  /** Runs one batch now, on this thread. */
  async run(task: BatchTask): Promise<BatchResult> {
    if (this.#closed) throw new ActorStoppedError('the in-thread runner is closed');
    const running = executeBatch(this.#cache, task);
    this.#running.add(running);
    try {
      return await running;
    } finally {
      this.#running.delete(running);
    }
  }

  /** Loads the version's session on this thread (MODEL_NOT_FOUND, MODEL_INTEGRITY when it cannot). */
  async load(key: SessionKey): Promise<void> {
    try {
      await this.#cache.use(key.modelPath, key.modelSha256, () => Promise.resolve());
    } catch (error) {
      throw classifyOrtError(error, 'load');
    }
  }

  /** Releases the version's session once its running batches end. */
  release(key: SessionKey): Promise<void> {
    return this.#cache.release(key.modelPath, key.modelSha256);
  }

  /** Refuses new batches, waits for running ones, releases the sessions; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#running]);
    await this.#cache.close();
  }
}
