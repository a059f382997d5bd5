/**
 * Adapts a model actor to the router's StepExecutor and enforces the step's own timeout. All calls of a
 * step share one timeout length, so one DeadlineQueue serves them with a single timer. Rows still queued
 * or running when their block's step times out are left to finish; their late results are ignored, and
 * every row of the block settles as a timeout.
 */
import type { SchedulerLike } from 'rxjs';
import type { ModelActor } from '../actors/model-actor.js';
import { DeadlineQueue } from '../core/deadline-queue.js';
import { ModelTimeoutError } from '../core/errors.js';
import type { RowInputs, RowResults } from '../models/types.js';
import type { StepExecutor } from '../pipeline/route/event-router.js';

export function stepExecutor(actor: ModelActor, scheduler: SchedulerLike, timeoutMs: number | undefined): StepExecutor {
  if (timeoutMs === undefined) return { infer: (rows) => actor.inferBlock(rows) };
  const deadlines = new DeadlineQueue(scheduler, timeoutMs);
  const ref = actor.model.ref;
  return {
    infer(rows: readonly RowInputs[]): Promise<RowResults> {
      return new Promise<RowResults>((resolve) => {
        let settled = false;
        const deadline = deadlines.add(() => {
          settled = true;
          const error = new ModelTimeoutError(`${ref} did not answer within ${timeoutMs} ms`, { details: { model: ref, timeoutMs } });
          resolve({ outputs: new Array<undefined>(rows.length).fill(undefined), errors: new Array<ModelTimeoutError>(rows.length).fill(error) });
        });
        void actor.inferBlock(rows).then((result) => {
          if (settled) return;
          settled = true;
          deadline.cancel();
          resolve(result);
        });
      });
    },
  };
}
