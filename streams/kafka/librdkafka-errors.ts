/**
 * librdkafka's errors as Verdict's, by the same rules as kafkajs's (kafkajs-errors.ts): a record the brokers
 * refused for itself is a `RecordRejectedError`; anything else a `TransportError` whose `retryable` says
 * whether sending again can help. librdkafka's positive codes are Kafka's protocol error codes; its negative
 * ones are the client's own (rdkafka.h, `rd_kafka_resp_err_t`).
 */
import { RecordRejectedError, TransportError } from '../../core/errors.js';
import { RECORD_ERRORS } from './kafkajs-errors.js';
import type { LibrdkafkaError } from './librdkafka-binding.js';

/** Kafka's names of the protocol codes that refuse a record for itself (the set `RECORD_ERRORS` names). */
const KAFKA_RECORD_ERRORS: ReadonlyMap<number, string> = new Map([
  [2, 'CORRUPT_MESSAGE'],
  [10, 'MESSAGE_TOO_LARGE'],
  [18, 'RECORD_LIST_TOO_LARGE'],
  [32, 'INVALID_TIMESTAMP'],
  [43, 'UNSUPPORTED_FOR_MESSAGE_FORMAT'],
  [87, 'INVALID_RECORD'],
]);

/**
 * Codes sending again cannot cure without an operator: credentials, rights, TLS, a fatal producer state, a
 * configuration librdkafka refuses. Everything else (timeouts, brokers away, leaders moving, not enough
 * replicas) can pass, so the pipeline's retry loop sends again.
 */
const FINAL: ReadonlyMap<number, string> = new Map([
  [-150, '_FATAL'],
  [-169, '_AUTHENTICATION'],
  [-181, '_SSL'],
  [-186, '_INVALID_ARG'],
  [21, 'INVALID_REQUIRED_ACKS'],
  [29, 'TOPIC_AUTHORIZATION_FAILED'],
  [31, 'CLUSTER_AUTHORIZATION_FAILED'],
  [35, 'UNSUPPORTED_VERSION'],
  [58, 'SASL_AUTHENTICATION_FAILED'],
]);

for (const name of KAFKA_RECORD_ERRORS.values()) {
  if (!RECORD_ERRORS.has(name)) throw new Error(`librdkafka-errors: ${name} is not one of RECORD_ERRORS`);
}

/** The Kafka error name of a record refusal (`details.kafkaError`, as kafkajs's), or undefined. */
export function recordErrorName(code: number): string | undefined {
  return KAFKA_RECORD_ERRORS.get(code);
}

/** A failure that is not a record refusal: retryable unless the code is one only an operator can cure. */
export function toLibrdkafkaTransportError(err: LibrdkafkaError, what: string): TransportError {
  return new TransportError(`${what}: ${err.message}`, {
    cause: err,
    retryable: !FINAL.has(err.code),
    // `kafkaType` as kafkajs's transport errors name Kafka's error (kafkajs-errors.ts): one key for both producers.
    details: { librdkafkaCode: err.code, ...(FINAL.has(err.code) ? { kafkaType: FINAL.get(err.code) } : {}) },
  });
}

/** One record's produce failure, from its delivery report or from `produce()` itself. */
export function toLibrdkafkaProduceError(err: LibrdkafkaError): TransportError | RecordRejectedError {
  const name = recordErrorName(err.code);
  if (name !== undefined) {
    return new RecordRejectedError(`the broker refused the record: ${name}`, { cause: err, details: { kafkaError: name, librdkafkaCode: err.code } });
  }
  return toLibrdkafkaTransportError(err, 'produce failed');
}
