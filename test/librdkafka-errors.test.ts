/**
 * librdkafka's error codes as Verdict's errors (streams/kafka/librdkafka-errors.ts): which codes refuse a
 * record for itself, which failures a retry can cure, and the details each carries.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordRejectedError, TransportError } from '../core/errors.js';
import { RECORD_ERRORS } from '../streams/kafka/kafkajs-errors.js';
import { recordErrorName, toLibrdkafkaProduceError, toLibrdkafkaTransportError } from '../streams/kafka/librdkafka-errors.js';

const err = (code: number): { code: number; message: string } => ({ code, message: `librdkafka error ${code}` });

test('the codes Kafka gives for a record itself are record refusals, with Kafka\'s name as kafkajs gives it', () => {
  const table: Array<[number, string]> = [[2, 'CORRUPT_MESSAGE'], [10, 'MESSAGE_TOO_LARGE'], [18, 'RECORD_LIST_TOO_LARGE'], [32, 'INVALID_TIMESTAMP'], [43, 'UNSUPPORTED_FOR_MESSAGE_FORMAT'], [87, 'INVALID_RECORD']];
  assert.deepEqual(table.map(([, name]) => name).sort(), [...RECORD_ERRORS].sort(), 'the same set as kafkajs\'s');
  for (const [code, name] of table) {
    assert.equal(recordErrorName(code), name);
    const error = toLibrdkafkaProduceError(err(code));
    assert.ok(error instanceof RecordRejectedError, name);
    assert.equal(error.code, RecordRejectedError.code);
    assert.deepEqual(error.details, { kafkaError: name, librdkafkaCode: code });
  }
});

test('failures only an operator can cure are final; every other failure is retryable', () => {
  const final: Array<[number, string]> = [
    [-150, '_FATAL'], [-169, '_AUTHENTICATION'], [-181, '_SSL'], [-186, '_INVALID_ARG'], [21, 'INVALID_REQUIRED_ACKS'],
    [29, 'TOPIC_AUTHORIZATION_FAILED'], [31, 'CLUSTER_AUTHORIZATION_FAILED'], [35, 'UNSUPPORTED_VERSION'], [58, 'SASL_AUTHENTICATION_FAILED'],
  ];
  for (const [code, name] of final) {
    const error = toLibrdkafkaProduceError(err(code));
    assert.ok(error instanceof TransportError, name);
    assert.equal(error.retryable, false, name);
    // As kafkajs's transport errors name Kafka's error (kafkajs-errors.ts).
    assert.deepEqual(error.details, { librdkafkaCode: code, kafkaType: name });
  }
  // _MSG_TIMED_OUT, _TRANSPORT, _ALL_BROKERS_DOWN, _TIMED_OUT, _QUEUE_FULL, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT,
  // NETWORK_EXCEPTION, NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS_AFTER_APPEND, LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION.
  for (const code of [-192, -195, -187, -185, -184, 6, 7, 13, 19, 20, 5, 3]) {
    const error = toLibrdkafkaProduceError(err(code));
    assert.ok(error instanceof TransportError && !(error instanceof RecordRejectedError), String(code));
    assert.equal(error.retryable, true, String(code));
    assert.equal(error.code, TransportError.code);
    assert.deepEqual(error.details, { librdkafkaCode: code });
  }
  const connect = toLibrdkafkaTransportError(err(-195), 'producer connect failed');
  assert.match(connect.message, /^producer connect failed: librdkafka error -195$/);
  assert.equal((connect as Error & { cause?: unknown }).cause !== undefined, true, 'the binding\'s error is the cause');
});
