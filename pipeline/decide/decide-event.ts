/**
 * The decide stage for one joined event: its decision by the rules, or its dead letter when no step could
 * use it (bad input for every model).
 */
import { toMicros, type Clock } from '../../core/clock.js';
import { asVerdictError, InternalError, type VerdictError } from '../../core/errors.js';
import type { DeadLetterer } from '../dead-letters.js';
import type { IngestedEvent } from '../ingest/ingest.js';
import type { JoinResult } from '../join/types.js';
import type { Outcome } from '../outcome.js';
import type { Decision, DecisionInput } from './decision-actor.js';

export interface Decider {
  decide(input: DecisionInput): Decision;
}

/**
 * A join with no model output and a non-retryable step error cannot be decided: the record itself is at
 * fault (bad input for a model). Timeouts and other transient failures go to the incomplete-join policy.
 */
function undecidable(join: JoinResult): { step: string; model: string | undefined; error: VerdictError } | null {
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
      timings: { ingest: toMicros(ev.ingestMs), models: toMicros(join.closedAt - join.openedAt) },
    });
    const total = toMicros(deps.clock.now() - ev.receivedAt);
    return { kind: 'decision', record: ev.record, decision: { ...decision, latencyMs: { ...decision.latencyMs, total } } };
  } catch (err) {
    // The decider catches rule failures itself: whatever escapes it is not the record's fault.
    return deps.deadLetter(ev.record, err, {}, InternalError);
  }
}
