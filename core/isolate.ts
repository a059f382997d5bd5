/**
 * The one failure mechanism for work that can be cut in two: a model batch (actors/model-actor.ts) and a
 * block of records in a block worker (runtime/isolate-block.ts) both run through it.
 *
 *   1. The whole unit runs through the one retry helper (core/retry.ts): 2 attempts, the second only when
 *      the first failed with a retryable error (a dead worker thread, a full pool queue).
 *   2. If it still fails with an error one item can cause (`isolatable`: a bad row, or a thread that died
 *      under the unit), the unit is cut in halves, run one after the other, each once, without further
 *      retries, down to single items. A half that succeeds settles its items normally; a single item that
 *      still fails is the poison and settles alone with the error. Halves run in turn so isolation never
 *      adds more than one task to a pool's queue, and a poison item kills at most one thread per level.
 *   3. Any other failure settles the whole unit with its error.
 *
 * Never rejects unless `settle` throws.
 */
import { asVerdictError, type VerdictError } from './errors.js';
import { retry } from './retry.js';

export interface Isolation<U, R> {
  /** Items in the unit (rows, records). */
  size(unit: U): number;
  /** Cuts a unit of size > 1 into two non-empty halves, in order. */
  halve(unit: U): readonly [U, U];
  /** One attempt at the whole unit. */
  run(unit: U): Promise<R>;
  /** Whether `error` can come from a single item, so that halving can find it. */
  isolatable(error: VerdictError): boolean;
  /** The class an unrecognised rejection of `run` becomes (default InternalError, via asVerdictError). */
  readonly fallback?: Parameters<typeof asVerdictError>[1];
  /** Called before the retry of the whole unit. */
  onRetry?(error: VerdictError, attempt: number): void;
}

/** How one piece of the unit ended; `attempts` counts every run its items were part of (for dead letters). */
export type Settled<R> =
  | { readonly ok: true; readonly value: R; readonly attempts: number }
  | { readonly ok: false; readonly error: VerdictError; readonly attempts: number };

/** The number of attempts a unit gets before isolation: one retry. */
export const UNIT_ATTEMPTS = 2;

export async function runIsolated<U, R>(unit: U, how: Isolation<U, R>, settle: (piece: U, outcome: Settled<R>) => void): Promise<void> {
  // The first attempt runs bare: it is every batch's and every block's path, and the retry helper's loop,
  // closures and error bookkeeping are only needed once it has failed.
  let first: VerdictError | undefined;
  let value!: R;
  try {
    value = await how.run(unit);
  } catch (error) {
    first = asVerdictError(error, how.fallback);
  }
  if (first === undefined) {
    settle(unit, { ok: true, value, attempts: 1 });
    return;
  }
  const failed = first;
  let attempts = 1;
  try {
    // The retry helper decides on the failure it is handed as attempt 1, exactly as if it had run it.
    value = await retry((attempt) => {
      if (attempt === 1) return Promise.reject(failed);
      attempts++;
      return how.run(unit).catch((error: unknown) => { throw asVerdictError(error, how.fallback); });
    }, {
      // No backoff: the retry is for a thread that died, and Piscina has already started its replacement.
      attempts: UNIT_ATTEMPTS, initialDelayMs: 0, maxDelayMs: 0, sleep: () => Promise.resolve(),
      ...(how.onRetry === undefined ? {} : { onRetry: (error: VerdictError, attempt: number) => how.onRetry?.(error, attempt) }),
    });
  } catch (error) {
    // RetryExhaustedError carries the last attempt's error as its cause: asVerdictError finds it.
    await isolate(unit, asVerdictError(error, how.fallback), attempts, how, settle);
    return;
  }
  settle(unit, { ok: true, value, attempts });
}

async function isolate<U, R>(unit: U, error: VerdictError, attempts: number, how: Isolation<U, R>, settle: (piece: U, outcome: Settled<R>) => void): Promise<void> {
  if (!how.isolatable(error) || how.size(unit) <= 1) {
    settle(unit, { ok: false, error, attempts });
    return;
  }
  for (const half of how.halve(unit)) {
    let value: R;
    try {
      value = await how.run(half);
    } catch (err) {
      await isolate(half, asVerdictError(err, how.fallback), attempts + 1, how, settle);
      continue;
    }
    settle(half, { ok: true, value, attempts: attempts + 1 });
  }
}
