/**
 * Verdict's producer settings as librdkafka's configuration properties (librdkafka CONFIGURATION.md, 2.x).
 * What is left out keeps librdkafka's default. The choices that differ from it say why.
 */
import { ConfigError } from '../../core/errors.js';
import type { LibrdkafkaConfig } from './librdkafka-binding.js';
import type { KafkaConnection, ProducerSettings } from './kafka-client.js';
import { pemOf } from './kafkajs-client.js';
import { librdkafkaLogLevel } from './librdkafka-log.js';

const SASL_MECHANISMS = { 'plain': 'PLAIN', 'scram-sha-256': 'SCRAM-SHA-256', 'scram-sha-512': 'SCRAM-SHA-512' } as const;

/** Throws `ConfigError` for what librdkafka cannot express (`ssl.servername`) and for an unreadable PEM file. */
export function librdkafkaConfig(connection: KafkaConnection, settings: ProducerSettings): LibrdkafkaConfig {
  const config: LibrdkafkaConfig = {
    'bootstrap.servers': connection.brokers.join(','),
    'client.id': connection.clientId,
    // Kafka's Java partitioner: murmur2 of the key (null keys spread at random), as kafkajs's
    // DefaultPartitioner and the embedded log place keys; librdkafka's own default is crc32 ("consistent_random").
    'partitioner': 'murmur2_random',
    'acks': settings.acks,
    'compression.codec': settings.compression,
    'max.in.flight.requests.per.connection': settings.maxInFlightRequests,
    // Not idempotent, as the kafkajs producer (kafkajs-client.ts says why): a retry may duplicate, never lose.
    'enable.idempotence': false,
    'message.send.max.retries': settings.retries,
    'retry.backoff.ms': settings.initialRetryTime,
    'retry.backoff.max.ms': Math.max(settings.initialRetryTime, settings.maxRetryTime),
    'linger.ms': settings.lingerMs,
    // The broker decides what is too large (its max.message.bytes), as with kafkajs, which has no limit of its
    // own: librdkafka's default (1,000,000) would refuse, client-side, records a broker accepts. 100 MB is
    // librdkafka's receive.message.max.bytes default, which bounds this one.
    'message.max.bytes': 100_000_000,
    // A decision is one small record: Nagle's delay would sit on every produce request.
    'socket.nagle.disable': true,
    // One delivery report per record, without its value: the report is how a record counts as acknowledged.
    'dr_cb': true,
    // Its log as events (librdkafka-log.ts forwards them at kafka.logLevel; the producer reads failures).
    'event_cb': true,
    'log_level': librdkafkaLogLevel(connection.logLevel),
  };
  if (connection.connectionTimeout !== undefined) config['socket.connection.setup.timeout.ms'] = Math.max(1_000, connection.connectionTimeout);
  if (connection.requestTimeout !== undefined) {
    config['request.timeout.ms'] = connection.requestTimeout;
    // How long a record may take in all, retries included, before its report says it failed (librdkafka's
    // default is 5 minutes): a send then fails within about what a kafkajs send would, and the pipeline retries.
    config['message.timeout.ms'] = Math.max(connection.requestTimeout, settings.lingerMs + 1);
  }
  const ssl = connection.ssl;
  const sasl = connection.sasl ?? null;
  const tls = ssl === true || typeof ssl === 'object';
  config['security.protocol'] = sasl === null ? (tls ? 'ssl' : 'plaintext') : (tls ? 'sasl_ssl' : 'sasl_plaintext');
  if (ssl === true) config['ssl.ca.location'] = 'probe';
  else if (typeof ssl === 'object') {
    if (ssl.servername !== undefined) {
      throw new ConfigError('kafka.ssl.servername: the librdkafka producer cannot set the TLS server name; use the kafkajs producer, or name the brokers as their certificates do');
    }
    // librdkafka takes one PEM string an item (several CA certificates concatenated).
    const pem = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join('\n') : v);
    const ca = pem(pemOf(ssl.ca, ssl.caFile, 'caFile'));
    const cert = pem(pemOf(ssl.cert, ssl.certFile, 'certFile'));
    const key = pem(pemOf(ssl.key, ssl.keyFile, 'keyFile'));
    if (ca !== undefined) config['ssl.ca.pem'] = ca;
    else config['ssl.ca.location'] = 'probe';
    // A client certificate is presented only as a pair, as Node's TLS does (a key alone is not used there);
    // librdkafka refuses a key without a certificate when it connects ("no certificate assigned").
    if (cert !== undefined && key !== undefined) {
      config['ssl.certificate.pem'] = cert;
      config['ssl.key.pem'] = key;
      if (ssl.passphrase !== undefined) config['ssl.key.password'] = ssl.passphrase;
    }
    if (ssl.rejectUnauthorized === false) {
      config['enable.ssl.certificate.verification'] = false;
      config['ssl.endpoint.identification.algorithm'] = 'none';
    }
  }
  if (sasl !== null) {
    config['sasl.mechanisms'] = SASL_MECHANISMS[sasl.mechanism];
    config['sasl.username'] = sasl.username;
    config['sasl.password'] = sasl.password;
  }
  return config;
}
