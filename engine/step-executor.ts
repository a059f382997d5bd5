/**
 * Adapts a model actor to the router's StepExecutor, adding the step's own timeout. The row is aborted if
 * still queued when the timeout fires; a row already in a running batch is left to finish and its late
 * result is ignored, so the step settles as a timeout either way.
 */
import type { SchedulerLike } from 'rxjs';
import { ModelTimeoutError } from '../core/errors.js';
import type { ModelActor } from '../actors/model-actor.js';
import type { RowInputs, RowOutputs } from '../models/types.js';
import type { StepExecutor } from '../streams/route/event-router.js';

export function stepExecutor(actor: ModelActor, scheduler: SchedulerLike): StepExecutor {
  return {
    infer(row: RowInputs, options?: { timeoutMs?: number }): Promise<RowOutputs> {
      const timeoutMs = options?.timeoutMs;
      if (timeoutMs === undefined) return actor.infer(row);
      const controller = new AbortController();
      return new Promise<RowOutputs>((resolve, reject) => {
        const timer = scheduler.schedule(() => {
          controller.abort();
          reject(new ModelTimeoutError(`${actor.model.ref} did not answer within ${timeoutMs} ms`, { details: { model: actor.model.ref, timeoutMs } }));
        }, timeoutMs);
        actor.infer(row, controller.signal).then(
          (out) => { timer.unsubscribe(); resolve(out); },
          (err: unknown) => { timer.unsubscribe(); reject(err as Error); },
        );
      });
    },
  };
}
