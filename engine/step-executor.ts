/**
 * Adapts a model actor to the router's StepExecutor and enforces the step's own timeout. All calls of a
 * step share one timeout length, so one DeadlineQueue serves them with a single timer. A row still queued
 * or running when its step times out is left to finish; its late result is ignored, and the step settles
 * as a timeout.
 */
import type { SchedulerLike } from 'rxjs';
import type { ModelActor } from '../actors/model-actor.js';
import { DeadlineQueue } from '../core/deadline-queue.js';
import { asVerdictError, ModelTimeoutError } from '../core/errors.js';
import type { RowInputs, RowOutputs } from '../models/types.js';
import type { StepExecutor } from '../streams/route/event-router.js';

export function stepExecutor(actor: ModelActor, scheduler: SchedulerLike, timeoutMs: number | undefined): StepExecutor {
  if (timeoutMs === undefined) return { infer: (row) => actor.infer(row) };
  const deadlines = new DeadlineQueue(scheduler, timeoutMs);
  const ref = actor.model.ref;
  return {
    infer(row: RowInputs): Promise<RowOutputs> {
      return new Promise<RowOutputs>((resolve, reject) => {
        let settled = false;
        const deadline = deadlines.add(() => {
          settled = true;
          reject(new ModelTimeoutError(`${ref} did not answer within ${timeoutMs} ms`, { details: { model: ref, timeoutMs } }));
        });
        actor.infer(row).then(
          (out) => { if (!settled) { settled = true; deadline.cancel(); resolve(out); } },
          (err: unknown) => { if (!settled) { settled = true; deadline.cancel(); reject(asVerdictError(err)); } },
        );
      });
    },
  };
}
