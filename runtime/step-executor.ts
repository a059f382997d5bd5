/**
 * Adapts a model actor to the router's StepExecutor and bounds each call in time. All calls of a step share
 * one bound, so one DeadlineQueue serves them with a single timer.
 *
 * The bound is the step's own `timeoutMs` when it is tighter than the join deadline (`ownTimeout`), else the
 * join deadline. When it passes:
 *   - rows of the call not yet dispatched to the runner are withdrawn from the actor's batcher (through the
 *     call's Withdrawal, actors/withdrawal.ts) and never run: under overload that is real work saved. Rows already running finish
 *     and their results are ignored.
 *   - the actor is told (`reportTimeout`): a step timeout counts against the model's circuit breaker.
 *   - with its own timeout, the call settles at once: every row a MODEL_TIMEOUT. When the join deadline is the
 *     bound, the join has normally closed the step as a timeout already (its timer was armed first, for no later),
 *     and the call settles when the actor does, its withdrawn rows as MODEL_TIMEOUT; that late report is
 *     dropped by the join.
 * A row that crashes its worker after the join's deadline is therefore a timeout, like any slow model: the
 * join closed before the crash was known (see README "When a model fails").
 *
 * The bound is judged by the clock when the actor answers, not only by the timer: a model that runs on this
 * thread (runtime.mode: blocks, or workers: 0) blocks the thread for the whole run, so its timer cannot fire
 * before the late answer arrives; without the check, a step ten times slower than its timeout was `ok`.
 */
import type { ModelActor } from '../actors/model-actor.js';
import { Withdrawal } from '../actors/withdrawal.js';
import type { Clock } from '../core/clock.js';
import { DeadlineQueue } from '../core/deadline-queue.js';
import { AbortedError, ModelTimeoutError } from '../core/errors.js';
import type { RowInputs, RowResults } from '../models/types.js';
import type { StepExecutor } from '../pipeline/route/event-router.js';

/**
 * `boundMs`: milliseconds a call may take (the step timeout, or the join deadline); `ownTimeout`: whether the
 * step's own timeout is the bound (so the call itself settles as a timeout when it passes).
 */
export function stepExecutor(actor: ModelActor, clock: Clock, boundMs: number, ownTimeout: boolean): StepExecutor & { close(): void } {
  const deadlines = new DeadlineQueue(clock, boundMs);
  const ref = actor.model.ref;
  const timeout = (): ModelTimeoutError =>
    new ModelTimeoutError(`${ref} did not answer within ${boundMs} ms`, { details: { model: ref, timeoutMs: boundMs } });
  return {
    /** Drops every pending deadline and its timer (engine close): a settled call's entry otherwise keeps it armed. */
    close: () => deadlines.clear(),
    infer(rows: readonly RowInputs[]): Promise<RowResults> {
      return new Promise<RowResults>((resolve) => {
        let settled = false;
        let expired = false;
        const withdrawal = new Withdrawal();
        const deadline = deadlines.add(() => {
          expired = true;
          actor.reportTimeout();
          if (ownTimeout) {
            settled = true;
            const error = timeout();
            resolve({ outputs: new Array<undefined>(rows.length).fill(undefined), errors: new Array<ModelTimeoutError>(rows.length).fill(error) });
          }
          // After settling: the withdrawn rows' AbortedError results are not the caller's to see.
          withdrawal.withdraw(timeout());
        });
        void actor.inferBlock(rows, withdrawal).then((result) => {
          // Late by the clock is late, even when this thread was too busy to run the timer (a model run on this
          // thread blocks it for as long as the run takes): the overdue deadline runs first, as it would have.
          deadlines.expireDue();
          if (settled) return;
          settled = true;
          deadline.cancel();
          if (!expired) return resolve(result);
          // Withdrawn rows did not run because the step ran out of time: to the join they are timeouts.
          const error = timeout();
          resolve({ outputs: result.outputs, errors: result.errors.map((e) => (e?.code === AbortedError.code ? error : e)) });
        });
      });
    },
  };
}
