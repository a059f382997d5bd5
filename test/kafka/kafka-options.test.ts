/** The `kafka` config block and its mapping onto kafkajs: defaults, field-path errors, TLS and SASL, error classes, headers. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, RecordConversionError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import type { KafkaMessage } from 'kafkajs';
import { WIRE_HEADERS } from '../../streams/kafka/kafkajs-record-codec.js';
import { parseKafkaOptions } from '../../config/kafka-options.js';
import { kafkajsConfig, toRecord } from '../../streams/kafka/kafkajs-client.js';
import { toTransportError } from '../../streams/kafka/kafkajs-errors.js';

describe('kafka options', () => {
  test('a minimal block gets every default', () => {
    const options = parseKafkaOptions({ brokers: ['kafka-1:9092'] });
    assert.equal(options.clientId, 'verdict');
    assert.equal(options.ssl, false);
    assert.equal(options.sasl, null);
    assert.equal(options.fromBeginning, true);
    assert.equal(options.producer.acks, -1);
    assert.equal(options.producer.compression, 'none');
    assert.ok(options.heartbeatInterval < options.sessionTimeout);
    assert.equal(options.stallTimeoutMs, 15_000);
  });

  test('errors name the field path', () => {
    assert.throws(() => parseKafkaOptions({ brokers: ['no-port'], heartbeatInterval: 40_000, sasl: { mechanism: 'gssapi' } }, 'daemon.kafka'), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /daemon\.kafka is invalid/);
      assert.match(err.message, /brokers\[0\]: must be host:port/);
      assert.match(err.message, /sasl\.mechanism/);
      return true;
    });
    assert.throws(() => parseKafkaOptions({ brokers: ['k:9092'], heartbeatInterval: 40_000 }), /heartbeatInterval: must be below sessionTimeout/);
    assert.throws(() => parseKafkaOptions({ brokers: ['k:9092'], stallTimeoutMs: 1_000 }), /stallTimeoutMs: must be 0 \(off\) or above twice maxWaitTimeInMs \(1000\)/);
    assert.equal(parseKafkaOptions({ brokers: ['k:9092'], stallTimeoutMs: 0 }).stallTimeoutMs, 0);
  });

  test('TLS material and SASL credentials pass through to kafkajs', () => {
    const options = parseKafkaOptions({
      brokers: ['k:9093'], ssl: { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM', rejectUnauthorized: false },
      sasl: { mechanism: 'scram-sha-512', username: 'verdict', password: 's3cret' }, connectionTimeout: 1_000, requestTimeout: 2_000,
    });
    const config = kafkajsConfig(options, silentLogger);
    assert.deepEqual(config.ssl, { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM', rejectUnauthorized: false });
    assert.deepEqual(config.sasl, { mechanism: 'scram-sha-512', username: 'verdict', password: 's3cret' });
    assert.equal(config.connectionTimeout, 1_000);
    assert.equal(config.requestTimeout, 2_000);
    assert.equal(kafkajsConfig(parseKafkaOptions({ brokers: ['k:9093'], ssl: true }), silentLogger).ssl, true);
    assert.equal(kafkajsConfig(parseKafkaOptions({ brokers: ['k:9092'] }), silentLogger).ssl, undefined);
  });

  test('kafkajs errors keep their retry flag; exhausted retries stay retryable', () => {
    const protocol = Object.assign(new Error('too large'), { name: 'KafkaJSProtocolError', retriable: false, type: 'MESSAGE_TOO_LARGE' });
    assert.equal(toTransportError(protocol, 'produce').retryable, false);
    const leader = Object.assign(new Error('not leader'), { name: 'KafkaJSProtocolError', retriable: true, type: 'NOT_LEADER_FOR_PARTITION' });
    const exhausted = Object.assign(new Error('not leader'), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false, cause: leader });
    const error = toTransportError(exhausted, 'produce');
    assert.equal(error.retryable, true);
    assert.equal(error.code, 'TRANSPORT_FAILED');
    assert.deepEqual(error.details, { kafkaError: 'KafkaJSNumberOfRetriesExceeded', kafkaType: 'NOT_LEADER_FOR_PARTITION' });
    assert.equal(toTransportError(new TypeError('bug'), 'produce').retryable, false);
  });

  test('a fetched message becomes a record byte for byte: headers in wire order, null and binary values, tombstones', () => {
    const wire = [
      { key: 'b', value: Buffer.from([0xff, 0xfe, 0x80, 0x41]) },
      { key: 'a', value: null },
      { key: 'b', value: Buffer.from('second') },
      { key: '1', value: Buffer.alloc(0) },
    ];
    // As the record codec hands it over: kafkajs's folded object, and the ordered list beside it.
    const message = {
      offset: '41', timestamp: '1700000000000', key: Buffer.from([0, 1]), value: null, attributes: 0, size: 0,
      headers: { b: [wire[0]!.value, wire[2]!.value], a: undefined, 1: wire[3]!.value }, [WIRE_HEADERS]: wire,
    } as unknown as KafkaMessage;
    const record = toRecord('t', 3, message);
    assert.deepEqual(record, { topic: 't', partition: 3, offset: 41, key: Buffer.from([0, 1]), value: null, headers: wire, timestamp: 1_700_000_000_000 });
  });

  test('without the codec\'s list, headers come from kafkajs\'s object, each name\'s values in order', () => {
    const message = {
      offset: '0', timestamp: '5', key: null, value: Buffer.from('v'), attributes: 0, size: 0,
      headers: { id: Buffer.from('e-1'), repeated: [Buffer.from('first'), Buffer.from('last')], absent: undefined },
    } as unknown as KafkaMessage;
    assert.deepEqual(toRecord('t', 0, message).headers, [
      { key: 'id', value: Buffer.from('e-1') }, { key: 'repeated', value: Buffer.from('first') },
      { key: 'repeated', value: Buffer.from('last') }, { key: 'absent', value: null },
    ]);
  });

  test('a message that cannot be converted becomes an invalid record, never an exception out of the batch', () => {
    const message = { offset: '7', timestamp: '0', key: Buffer.from('k'), value: Buffer.from('v'), attributes: 0, size: 0, headers: null,
      get [WIRE_HEADERS](): never { throw new Error('unreadable headers'); } } as unknown as KafkaMessage;
    const record = toRecord('t', 1, message);
    assert.equal(record.invalid?.code, RecordConversionError.code);
    assert.match(record.invalid?.message ?? '', /t\/1\/7.*unreadable headers/);
    assert.deepEqual([record.offset, record.key, record.value, record.headers], [7, Buffer.from('k'), Buffer.from('v'), []]);
  });
});
