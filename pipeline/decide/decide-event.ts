/**
 * The decide stage for one joined event: its decision by the rules, or its dead letter when no step could
 * use it (bad input for every model).
 */
import { roundToMicros, type Clock } from '../../core/clock.js';
import { asVerdictError, InternalError, WorkerCrashedError, type VerdictError } from '../../core/errors.js';
import type { DeadLetterer } from '../dead-letters.js';
import type { IngestedEvent } from '../ingest/ingest.js';
import type { JoinResult } from '../join/types.js';
import type { Outcome } from '../outcome.js';
import type { Decision, DecisionInput } from './decision-actor.js';

export interface Decider {
  /** The event's decision, counted. */
  decide(input: DecisionInput): Decision;
  /** The same evaluation, counted nowhere (a shadow's decision; see DecisionActor.evaluate). */
  evaluate(input: DecisionInput): Decision;
}

/**
 * Step errors that dead-letter the event whatever its other steps produced: the one place this rule lives.
 *
 * MODEL_WORKER_CRASHED: the event's row killed the thread that ran its model, on its retry too, and alone
 * after bisection (actors/model-actor.ts; the blocks placement isolates the record the same way in
 * runtime/isolate-block.ts). A crash is not a model verdict, so the incomplete policy must not decide it:
 * fail-open would approve a payment whose input brings the runtime down. The record goes to the dead-letter
 * topic byte for byte, to be replayed (`verdict dlq replay`) once the runtime is fixed.
 *
 * A crash only reaches here when it is known before the join's deadline; after it, the step is a timeout
 * like any slow model's.
 */
export const DEAD_LETTER_STEP_ERRORS: ReadonlySet<string> = new Set([WorkerCrashedError.code]);

/**
 * A join that cannot be decided, and the step that says why: a step error in DEAD_LETTER_STEP_ERRORS, or no
 * model output at all with a non-retryable step error (the record itself is at fault: bad input for a
 * model). Timeouts and other transient failures go to the incomplete-join policy.
 */
function undecidable(join: JoinResult): { step: string; model: string | undefined; error: VerdictError } | null {
  for (const step in join.errors) {
    const serialized = join.errors[step]!;
    if (DEAD_LETTER_STEP_ERRORS.has(serialized.code)) return { step, model: join.models[step], error: asVerdictError(serialized) };
  }
  // Any ok output makes the event decidable; a for-in finds one without allocating a key array per event.
  for (const _ in join.outputs) return null;
  for (const [step, serialized] of Object.entries(join.errors)) {
    const error = asVerdictError(serialized);
    if (!error.retryable) return { step, model: join.models[step], error };
  }
  return null;
}

export function decideEvent(ev: IngestedEvent, join: JoinResult, deps: { readonly decider: Decider; readonly deadLetter: DeadLetterer; readonly clock: Pick<Clock, 'now'> }): Outcome {
  const failed = undecidable(join);
  if (failed !== null) return deps.deadLetter(ev.record, failed.error, { step: failed.step, model: failed.model });
  try {
    const decision = deps.decider.decide({
      event: ev.event,
      eventId: ev.id,
      key: ev.key,
      join,
      state: ev.state,
      timings: { ingest: roundToMicros(ev.ingestMs), models: roundToMicros(join.closedAt - join.openedAt) },
    });
    const total = roundToMicros(deps.clock.now() - ev.receivedAt);
    return { kind: 'decision', record: ev.record, decision: { ...decision, latencyMs: { ...decision.latencyMs, total } } };
  } catch (err) {
    // The decider catches rule failures itself: whatever escapes it is not the record's fault.
    return deps.deadLetter(ev.record, err, {}, InternalError);
  }
}
