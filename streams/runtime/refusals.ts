/**
 * What becomes of a record whose outcome the sink refused for itself (a `RejectedRecord`: for Kafka, an
 * error such as MESSAGE_TOO_LARGE or INVALID_RECORD, see `RECORD_ERRORS` in kafka/kafkajs-errors.ts). Each
 * step is tried only when the one before was refused:
 *
 *   1. a decision → a dead letter of the input (key, value and headers byte for byte) with the refusal's
 *      code, `PRODUCE_RECORD_REJECTED`, and `verdict-kafka-error`;
 *   2. a dead letter → the same without its payload (`encodePayloadDropped`): provenance headers only, so the
 *      input can be read again from its topic;
 *   3. refused as well → `halted`: the caller stops the record's partition there.
 *
 * Errors that concern the connection, not the record, never reach here: the sink rejects the whole send and
 * the stream retries it.
 */
import type { VerdictError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import { encodeDeadLetter, encodePayloadDropped, reasonOf, type DeadLetterReason } from '../../pipeline/encode-outcome.js';
import type { EncodedOutcome } from '../../pipeline/outcome.js';
import type { RejectedRecord } from '../types.js';
import type { InboundRecord, OutboundRecord } from '../../pipeline/record.js';

/** Where dead letters go, and the pipeline their headers name. */
export interface DeadLetterTarget {
  readonly topic: string;
  readonly pipeline: string;
}

export interface RefusalDeps {
  /** Sends with the stream's retry of whole-send failures; resolves with the records refused. */
  readonly send: (records: readonly OutboundRecord[]) => Promise<readonly RejectedRecord[]>;
  readonly target: DeadLetterTarget;
  readonly logger: Logger;
  readonly metrics?: Pick<Metrics, 'produceRejected' | 'deadLetters'> | undefined;
}

export type Replacement =
  | { readonly kind: 'replaced'; readonly encoded: EncodedOutcome }
  | { readonly kind: 'halted'; readonly error: VerdictError };

export async function replaceRefused(record: InboundRecord, refused: EncodedOutcome, error: VerdictError, deps: RefusalDeps): Promise<Replacement> {
  const { send, target, logger, metrics } = deps;
  const count = (what: string, e: VerdictError): void => {
    metrics?.produceRejected.inc({ record: what, error: String(e.details['kafkaError'] ?? e.code) });
  };
  const where = { topic: record.topic, partition: record.partition, offset: record.offset };
  let reason: DeadLetterReason;
  let refusal = error;
  if (refused.kind === 'decision') {
    count('decision', error);
    const output = encodeDeadLetter({ kind: 'dead-letter', record, error, attempts: 1 }, target.topic, target.pipeline);
    const [again] = await send([output]);
    if (again === undefined) {
      metrics?.deadLetters.inc({ pipeline: target.pipeline, code: error.code });
      logger.warn({ ...where, err: error.toJSON() }, 'decision refused by the broker; dead-lettered');
      return { kind: 'replaced', encoded: { kind: 'dead-letter', output, label: error.code } };
    }
    refusal = again.error;
    reason = reasonOf(refusal);
  } else {
    // The dead letter's own code says why the record could not be decided; the refusal is said beside it.
    const kafkaError = refusal.details['kafkaError'];
    reason = {
      code: refused.label,
      message: `the dead letter (${refused.label}) was refused by the broker: ${refusal.message}`,
      ...(typeof kafkaError === 'string' ? { kafkaError } : {}),
    };
  }
  count('dead_letter', refusal);
  const output = encodePayloadDropped(record, reason, target.topic, target.pipeline);
  const [last] = await send([output]);
  if (last === undefined) {
    logger.warn({ ...where, err: refusal.toJSON() }, 'dead letter refused by the broker; written without its payload');
    return { kind: 'replaced', encoded: { kind: 'dead-letter', output, label: reason.code } };
  }
  count('payload_dropped', last.error);
  return { kind: 'halted', error: last.error };
}
