/**
 * kafkajs's errors as Verdict's: a `TransportError` whose `retryable` says whether trying again can help,
 * or a `RecordRejectedError` when Kafka refused the records of a produce request themselves.
 */
import { RecordRejectedError, TransportError } from '../../core/errors.js';

interface KafkajsErrorShape {
  readonly name?: string;
  readonly message?: string;
  readonly retriable?: boolean;
  readonly type?: string;
  readonly cause?: unknown;
}

/**
 * kafkajs marks each error `retriable`. It gives up with KafkaJSNumberOfRetriesExceeded, flagged
 * non-retriable, around an error that was retriable: more time can still help, so ours is retryable.
 * Otherwise the innermost cause decides, as kafkajs's own restart logic does.
 */
export function toTransportError(err: unknown, what: string): TransportError {
  if (err instanceof TransportError) return err;
  const top = (typeof err === 'object' && err !== null ? err : {}) as KafkajsErrorShape;
  let root = top;
  for (let depth = 0; depth < 8 && typeof root.cause === 'object' && root.cause !== null; depth++) root = root.cause;
  const retryable = top.name === 'KafkaJSNumberOfRetriesExceeded' || root.retriable === true;
  const message = top.message ?? String(err);
  return new TransportError(`${what}: ${message}`, {
    cause: err,
    retryable,
    details: { kafkaError: top.name, kafkaType: root.type ?? top.type },
  });
}

/**
 * Kafka errors a broker returns for the records of a produce request themselves, not for the connection,
 * the leader or the client's rights (Kafka's protocol error codes): sending those records again as they are
 * cannot help, but sending the others without them can. CORRUPT_MESSAGE is here too: brokers before Kafka
 * 2.8 answer it for a null key on a compacted topic (later ones, INVALID_RECORD), and a resend of a record
 * that was only damaged on the way succeeds when the sink isolates it, so nothing is lost by the choice.
 */
export const RECORD_ERRORS: ReadonlySet<string> = new Set([
  'CORRUPT_MESSAGE', // 2
  'MESSAGE_TOO_LARGE', // 10: larger than the topic's max.message.bytes
  'RECORD_LIST_TOO_LARGE', // 18: the request's record set; smaller sends fix it
  'INVALID_TIMESTAMP', // 32
  'UNSUPPORTED_FOR_MESSAGE_FORMAT', // 43: e.g. headers on a topic in an old message format
  'INVALID_RECORD', // 87: e.g. a null key on a compacted topic
]);

/** A produce failure: a `RecordRejectedError` when Kafka refused records for themselves, else as `toTransportError`. */
export function toProduceError(err: unknown): TransportError | RecordRejectedError {
  const error = toTransportError(err, 'produce failed');
  const kafkaType = error.details['kafkaType'];
  if (typeof kafkaType === 'string' && RECORD_ERRORS.has(kafkaType)) {
    return new RecordRejectedError(`the broker refused the record: ${kafkaType}`, { cause: err, details: { kafkaError: kafkaType } });
  }
  return error;
}
