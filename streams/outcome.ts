/** What the pipeline produces for each input record: exactly one decision or one dead letter. */
import type { Decision } from '../actors/decision-actor.js';
import type { VerdictError } from '../core/errors.js';
import type { InboundRecord } from './types.js';

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
