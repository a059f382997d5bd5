/** The `kafka` config block and its mapping onto kafkajs: defaults, field-path errors, TLS and SASL, error classes, headers. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { decodeHeaders } from '../../streams/kafka/headers.js';
import { parseKafkaOptions } from '../../streams/kafka/kafka-options.js';
import { kafkajsConfig, toTransportError } from '../../streams/kafka/kafkajs-client.js';

describe('kafka options', () => {
  test('a minimal block gets every default', () => {
    const options = parseKafkaOptions({ brokers: ['kafka-1:9092'] });
    assert.equal(options.clientId, 'verdict');
    assert.equal(options.ssl, false);
    assert.equal(options.sasl, undefined);
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

  test('wire headers decode to UTF-8 strings, a repeated key keeping its last value', () => {
    assert.deepEqual(decodeHeaders({
      id: Buffer.from('e-1'), text: 'plain', repeated: [Buffer.from('first'), 'last'], absent: undefined, utf8: Buffer.from('déjà'),
    }), { id: 'e-1', text: 'plain', repeated: 'last', utf8: 'déjà' });
    assert.deepEqual(decodeHeaders(undefined), {});
    assert.deepEqual(decodeHeaders({ empty: [] }), {});
  });
});
