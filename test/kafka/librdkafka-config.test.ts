/**
 * The daemon config's `kafka` block as librdkafka's properties (streams/kafka/librdkafka-config.ts): each SASL
 * mechanism, TLS on and off, PEM inline or from files, the passphrase, rejectUnauthorized; the producer
 * settings; and what librdkafka cannot express (a TLS server name) refused by name. Every mapping is also
 * handed to a real librdkafka producer, which checks each property and value when it is made (an unknown
 * property or a bad value throws), so a mistyped property cannot pass here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { kafkaOptionsSchema, kafkaProducerSchema } from '../../config/kafka-options.js';
import { ConfigError } from '../../core/errors.js';
import { packageRoot } from '../../core/paths.js';
import { loadLibrdkafka, type LibrdkafkaConfig } from '../../streams/kafka/librdkafka-binding.js';
import { librdkafkaConfig } from '../../streams/kafka/librdkafka-config.js';

const TLS_DIR = resolve(packageRoot, 'test/fixtures/tls');
const CA = readFileSync(join(TLS_DIR, 'ca.crt'), 'utf8');
const CERT = readFileSync(join(TLS_DIR, 'client.crt'), 'utf8');
const KEY = readFileSync(join(TLS_DIR, 'client.key'), 'utf8');

const base = { brokers: ['broker-1:9092', 'broker-2:9092'], clientId: 'verdict-test' };
const producer = kafkaProducerSchema.parse({ client: 'librdkafka' });

/** Makes (and discards) a real librdkafka producer: its constructor checks every property. */
async function acceptedByLibrdkafka(config: LibrdkafkaConfig): Promise<void> {
  const loaded = await loadLibrdkafka();
  assert.ok('module' in loaded, `the librdkafka producer is needed for this test: ${'missing' in loaded ? loaded.missing : ''}`);
  assert.doesNotThrow(() => new loaded.module.Producer(config));
}

describe('librdkafka producer configuration', () => {
  test('the producer settings and the connection, with Kafka\'s partitioner', async () => {
    const options = kafkaOptionsSchema.parse({ ...base, producer: { client: 'librdkafka', acks: 1, compression: 'gzip', lingerMs: 3, retries: 7 } });
    const config = librdkafkaConfig(options, options.producer);
    assert.equal(config['bootstrap.servers'], 'broker-1:9092,broker-2:9092');
    assert.equal(config['client.id'], 'verdict-test');
    assert.equal(config['partitioner'], 'murmur2_random');
    assert.equal(config['acks'], 1);
    assert.equal(config['compression.codec'], 'gzip');
    assert.equal(config['linger.ms'], 3);
    assert.equal(config['message.send.max.retries'], 7);
    assert.equal(config['enable.idempotence'], false);
    assert.equal(config['dr_cb'], true);
    assert.equal(config['security.protocol'], 'plaintext');
    // The daemon's default request timeout bounds a record's delivery, retries included.
    assert.equal(config['message.timeout.ms'], options.requestTimeout);
    await acceptedByLibrdkafka(config);
  });

  for (const [mechanism, expected] of [['plain', 'PLAIN'], ['scram-sha-256', 'SCRAM-SHA-256'], ['scram-sha-512', 'SCRAM-SHA-512']] as const) {
    test(`SASL ${mechanism}, over TLS and without`, async () => {
      const sasl = { mechanism, username: 'svc', password: 's3cret' };
      const plain = librdkafkaConfig({ ...base, sasl }, producer);
      assert.equal(plain['security.protocol'], 'sasl_plaintext');
      assert.equal(plain['sasl.mechanisms'], expected);
      assert.equal(plain['sasl.username'], 'svc');
      assert.equal(plain['sasl.password'], 's3cret');
      await acceptedByLibrdkafka(plain);
      const tls = librdkafkaConfig({ ...base, sasl, ssl: true }, producer);
      assert.equal(tls['security.protocol'], 'sasl_ssl');
      assert.equal(tls['ssl.ca.location'], 'probe');
    });
  }

  test('TLS with inline PEM, from files, a passphrase, and without verification', async () => {
    const inline = librdkafkaConfig({ ...base, ssl: { ca: [CA, CA], cert: CERT, key: KEY } }, producer);
    assert.equal(inline['security.protocol'], 'ssl');
    assert.equal(inline['ssl.ca.pem'], `${CA}\n${CA}`);
    assert.equal(inline['ssl.certificate.pem'], CERT);
    assert.equal(inline['ssl.key.pem'], KEY);
    assert.equal(inline['ssl.ca.location'], undefined);
    await acceptedByLibrdkafka(inline);
    const files = librdkafkaConfig({ ...base, ssl: { caFile: join(TLS_DIR, 'ca.crt'), certFile: join(TLS_DIR, 'client.crt'), keyFile: join(TLS_DIR, 'client.key'), passphrase: 'pw' } }, producer);
    assert.equal(files['ssl.ca.pem'], CA);
    assert.equal(files['ssl.key.password'], 'pw');
    // A key without its certificate is not presented (as Node's TLS), so librdkafka does not refuse the connect.
    const keyOnly = librdkafkaConfig({ ...base, ssl: { ca: CA, key: KEY, passphrase: 'pw' } }, producer);
    assert.equal(keyOnly['ssl.key.pem'], undefined);
    assert.equal(keyOnly['ssl.key.password'], undefined);
    assert.equal(keyOnly['ssl.ca.pem'], CA);
    const loose = librdkafkaConfig({ ...base, ssl: { rejectUnauthorized: false } }, producer);
    assert.equal(loose['enable.ssl.certificate.verification'], false);
    assert.equal(loose['ssl.endpoint.identification.algorithm'], 'none');
    assert.equal(loose['ssl.ca.location'], 'probe');
    await acceptedByLibrdkafka(loose);
  });

  test('what librdkafka cannot express, or cannot read, is refused by name', () => {
    // At load, for librdkafka and auto alike; kafkajs takes it.
    for (const client of ['librdkafka', 'auto'] as const) {
      const parsed = kafkaOptionsSchema.safeParse({ ...base, ssl: { servername: 'kafka.internal' }, producer: { client } });
      assert.ok(!parsed.success && parsed.error.issues.some((i) => i.path.join('.') === 'ssl.servername'), `${client}: servername refused at load`);
    }
    assert.ok(kafkaOptionsSchema.safeParse({ ...base, ssl: { servername: 'kafka.internal' } }).success, 'kafkajs takes a server name');
    assert.throws(() => librdkafkaConfig({ ...base, ssl: { servername: 'kafka.internal' } }, producer),
      (err: unknown) => err instanceof ConfigError && err.code === ConfigError.code && /kafka\.ssl\.servername/.test(err.message));
    assert.throws(() => librdkafkaConfig({ ...base, ssl: { caFile: join(TLS_DIR, 'no-such.crt') } }, producer),
      (err: unknown) => err instanceof ConfigError && /kafka\.ssl\.caFile/.test(err.message) && !err.message.includes('BEGIN'));
  });
});
