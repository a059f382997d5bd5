/** What the pipeline produces for each input record: exactly one decision or one dead letter. */
import type { Decision } from './decide/decision-actor.js';
import type { VerdictError } from '../core/errors.js';
import type { InboundRecord, OutboundRecord } from './record.js';

export interface DeadLetter {
  readonly kind: 'dead-letter';
  readonly record: InboundRecord;
  readonly error: VerdictError;
  /** The pipeline step and model involved, when the failure was in one. */
  readonly step?: string;
  readonly model?: string;
  readonly attempts: number;
}

export interface Decided {
  readonly kind: 'decision';
  readonly record: InboundRecord;
  readonly decision: Decision;
}

export type Outcome = Decided | DeadLetter;

/**
 * An outcome as the stream delivers it: already encoded for the sink, with what callers count it by. The
 * stream needs no more than this, so outcomes can be made anywhere, a block worker included.
 */
export interface Delivery {
  readonly kind: Outcome['kind'];
  readonly output: OutboundRecord;
  /** The decision's event id; absent for dead letters. */
  readonly eventId?: string;
  /** The decision's action, or the dead letter's error code. */
  readonly label: string;
}

export function toDelivery(outcome: Outcome, output: OutboundRecord): Delivery {
  return outcome.kind === 'decision'
    ? { kind: 'decision', output, eventId: outcome.decision.eventId, label: outcome.decision.action }
    : { kind: 'dead-letter', output, label: outcome.error.code };
}
