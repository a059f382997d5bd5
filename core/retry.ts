/**
 * The one retry helper: exponential backoff with full jitter, stopping at the first non-retryable error.
 * Every attempt's error is kept, so the final failure can say what happened each time.
 */
import { preciseScheduler, sleep as sleepOn, type Clock } from './clock.js';
import { asVerdictError, InternalError, type VerdictError } from './errors.js';

export interface RetryOptions {
  /** Attempts in all, the first included. Infinity retries until the signal aborts. */
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Aborting it ends the retry: a backoff in progress rejects at once with the signal's reason. */
  readonly signal?: AbortSignal;
  readonly onRetry?: (error: VerdictError, attempt: number, delayMs: number) => void;
  /** Injected for tests; defaults to Math.random. */
  readonly random?: () => number;
  /** Times the backoffs (virtual time in tests). Default: the production clock. */
  readonly clock?: Clock;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Every attempt failed. Its code is the last attempt's (that error's class code: a sink that kept failing is
 * TRANSPORT_FAILED), and that error is the cause, so asVerdictError classifies the whole the same way.
 */
export class RetryExhaustedError extends Error {
  readonly code: string;

  constructor(readonly errors: readonly VerdictError[]) {
    const last = errors.at(-1);
    super(`gave up after ${errors.length} attempts: ${last?.message ?? 'no error recorded'}`, { cause: last });
    this.name = 'RetryExhaustedError';
    this.code = last?.code ?? InternalError.code;
  }
}

export async function retry<T>(work: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const errors: VerdictError[] = [];
  const random = options.random ?? Math.random;
  const clock = options.clock ?? preciseScheduler;
  const sleep = options.sleep ?? ((ms: number, signal?: AbortSignal) => sleepOn(clock, ms, signal));
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (err) {
      const error = asVerdictError(err);
      errors.push(error);
      if (!error.retryable || attempt >= options.attempts || options.signal?.aborted === true) {
        if (errors.length === 1) throw error;
        throw new RetryExhaustedError(errors);
      }
      const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** (attempt - 1));
      const delay = Math.round(random() * ceiling);
      options.onRetry?.(error, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
}
