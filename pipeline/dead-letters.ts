/** Turning a record's failure into its dead letter, counted by code: the one way any stage gives up on a record. */
import { asVerdictError, FeatureError, type VerdictError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { DeadLetterOutcome } from './outcome.js';
import type { InboundRecord } from './record.js';

/** Where the failure was, when it was in a step. */
export interface FailedStep {
  readonly step?: string;
  readonly model?: string | undefined;
}

export type DeadLetterer = (record: InboundRecord, err: unknown, where?: FailedStep, fallback?: typeof VerdictError) => DeadLetterOutcome;

/**
 * `fallback` classifies what no stage typed: by default a FeatureError, since ingestion's own failures are
 * typed (decode, schema, features) and anything else thrown there is about the event's values.
 */
export function deadLetterer(pipeline: string, metrics: Metrics | undefined): DeadLetterer {
  return (record, err, where = {}, fallback = FeatureError) => {
    const error = asVerdictError(err, fallback);
    metrics?.deadLetters.inc({ pipeline, code: error.code });
    return {
      kind: 'dead-letter',
      record,
      error,
      attempts: 1,
      ...(where.step === undefined ? {} : { step: where.step }),
      ...(where.model === undefined ? {} : { model: where.model }),
    };
  };
}
