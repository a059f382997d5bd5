/**
 * What one record ends as: its **outcome**, exactly one per input record, either a decision
 * (`DecisionOutcome`) or a dead letter (`DeadLetterOutcome`). The **decision** itself (action, score,
 * reasons) is `Decision`; an outcome encoded as the record the sink writes is an `EncodedOutcome`. The
 * README's "Words" table lists these and the other nouns.
 */
import type { Decision } from './decide/decision-actor.js';
import type { VerdictError } from '../core/errors.js';
import type { InboundRecord, OutboundRecord } from './record.js';

/** The record could not be decided: it goes to the dead-letter topic byte for byte, with the typed error. */
export interface DeadLetterOutcome {
  /** Discriminant: a dead letter. */
  readonly kind: 'dead-letter';
  /** The input record, as read. */
  readonly record: InboundRecord;
  /** Why: its `code` goes into the dead letter's `verdict-error-code` header. */
  readonly error: VerdictError;
  /** The pipeline step and model involved, when the failure was in one. */
  readonly step?: string;
  /** The model version (`name@version`) involved, when the failure was in one. */
  readonly model?: string;
  /** How many times the record was tried (header `verdict-attempts`). */
  readonly attempts: number;
}

/** The record was decided: the rules (or the incomplete policy) gave it a decision. */
export interface DecisionOutcome {
  /** Discriminant: a decision. */
  readonly kind: 'decision';
  /** The input record, as read. */
  readonly record: InboundRecord;
  readonly decision: Decision;
}

/** Exactly one per input record; switch on `kind`. */
export type Outcome = DecisionOutcome | DeadLetterOutcome;

/**
 * An outcome as the stream delivers it: already encoded for the sink, with what callers count it by. The
 * stream needs no more than this, so outcomes can be made anywhere, a block worker included.
 */
export interface EncodedOutcome {
  readonly kind: Outcome['kind'];
  readonly output: OutboundRecord;
  /** The decision's event id; absent for dead letters. */
  readonly eventId?: string;
  /** The decision's action, or the dead letter's error code. */
  readonly label: string;
}

export function toEncodedOutcome(outcome: Outcome, output: OutboundRecord): EncodedOutcome {
  return outcome.kind === 'decision'
    ? { kind: 'decision', output, eventId: outcome.decision.eventId, label: outcome.decision.action }
    : { kind: 'dead-letter', output, label: outcome.error.code };
}
