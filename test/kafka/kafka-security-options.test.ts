/**
 * The daemon config's `kafka.ssl` and `kafka.sasl` (file and `VERDICT_*` environment) mapped onto what kafkajs
 * is given: each SASL mechanism, TLS on and off, PEM inline or from files, the passphrase, the server name and
 * rejectUnauthorized. The mock broker speaks only PLAINTEXT, so this tests the mapping, not a TLS handshake or
 * a SASL exchange; the TLS options are still handed to Node's own `tls.createSecureContext`, which decrypts the
 * key with the passphrase.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { describe, test } from 'node:test';
import { stringify as stringifyYaml } from 'yaml';
import { loadDaemonConfig, type LoadedDaemonConfig } from '../../config/load-daemon.js';
import { REDACTED, redactSecrets } from '../../config/redact.js';
import { ConfigError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { kafkajsConfig } from '../../streams/kafka/kafkajs-client.js';

const PASSPHRASE = 'key-passphrase-4c1d';
const { privateKey: ENCRYPTED_KEY } = generateKeyPairSync('ec', {
  namedCurve: 'P-256',
  privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASSPHRASE },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
// Stand-ins: nothing here checks a certificate chain (no handshake), only that the bytes reach kafkajs intact.
const CA = '-----BEGIN CERTIFICATE-----\nQ0EgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n';
const CERT = '-----BEGIN CERTIFICATE-----\nY2xpZW50IGNlcnRpZmljYXRl\n-----END CERTIFICATE-----\n';

/** Writes `daemon.yaml` with this `kafka` block (and any files) into a fresh directory, then loads it as `verdict run` does. */
async function load(kafka: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, files: Record<string, string> = {}): Promise<LoadedDaemonConfig> {
  const dir = mkdtempSync(join(tmpdir(), 'verdict-kafka-security-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const path = join(dir, 'daemon.yaml');
  writeFileSync(path, stringifyYaml({ pipeline: 'pipeline.yaml', kafka: { brokers: ['kafka-1:9093'], ...kafka } }));
  return loadDaemonConfig(path, env);
}

const clientConfig = (loaded: LoadedDaemonConfig) => kafkajsConfig(loaded.config.kafka, silentLogger);

describe('kafka TLS and SASL options reach kafkajs as documented', () => {
  for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
    test(`sasl ${mechanism} from the file`, async () => {
      const config = clientConfig(await load({ sasl: { mechanism, username: 'verdict', password: 'pw-from-file' } }));
      assert.deepEqual(config.sasl, { mechanism, username: 'verdict', password: 'pw-from-file' });
      assert.equal(config.ssl, undefined, 'SASL alone is SASL_PLAINTEXT: no TLS unless asked');
    });
  }

  test('sasl from the environment: values taken verbatim (digits, yes, a leading * stay strings)', async () => {
    const env = {
      VERDICT_KAFKA__SASL__MECHANISM: 'scram-sha-256', VERDICT_KAFKA__SASL__USERNAME: '0123', VERDICT_KAFKA__SASL__PASSWORD: '*yes: 1e3 # not a comment',
    };
    const loaded = await load({}, env);
    assert.deepEqual(clientConfig(loaded).sasl, { mechanism: 'scram-sha-256', username: '0123', password: '*yes: 1e3 # not a comment' });
    assert.deepEqual([...loaded.overridden].sort(), ['kafka.sasl.mechanism', 'kafka.sasl.password', 'kafka.sasl.username']);
    // The environment wins over the file.
    const over = await load({ sasl: { mechanism: 'plain', username: 'u', password: 'file' } }, { VERDICT_KAFKA__SASL__PASSWORD: 'env' });
    assert.equal((clientConfig(over).sasl as { password: string }).password, 'env');
  });

  test('oauthbearer, aws and anything else are refused, saying what is supported', async () => {
    for (const mechanism of ['oauthbearer', 'aws', 'gssapi', 'PLAIN']) {
      await assert.rejects(load({ sasl: { mechanism, username: 'u', password: 'p' } }), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /kafka\.sasl\.mechanism: must be one of plain, scram-sha-256, scram-sha-512 \(oauthbearer and aws are not supported/);
        return true;
      });
    }
  });

  test('ssl true uses the system CAs; false or absent is plaintext; the environment can turn it on', async () => {
    assert.equal(clientConfig(await load({ ssl: true })).ssl, true);
    assert.equal(clientConfig(await load({ ssl: false })).ssl, undefined);
    assert.equal(clientConfig(await load({})).ssl, undefined);
    assert.equal(clientConfig(await load({}, { VERDICT_KAFKA__SSL: 'true' })).ssl, true);
  });

  test('PEM inline, with servername, rejectUnauthorized and the passphrase of an encrypted key', async () => {
    const config = clientConfig(await load({
      ssl: { ca: [CA, CA], cert: CERT, key: ENCRYPTED_KEY, passphrase: PASSPHRASE, servername: 'broker.internal', rejectUnauthorized: false },
    }));
    assert.deepEqual(config.ssl, { ca: [CA, CA], cert: CERT, key: ENCRYPTED_KEY, passphrase: PASSPHRASE, servername: 'broker.internal', rejectUnauthorized: false });
    const { ca: _ca, cert: _cert, ...keyOnly } = config.ssl as Record<string, unknown>;
    assert.doesNotThrow(() => createSecureContext(keyOnly), 'Node decrypts the key with the passphrase it was given');
    assert.throws(() => createSecureContext({ ...keyOnly, passphrase: 'wrong' }), /bad decrypt/);
  });

  test('PEM from files, relative to the config file, or named in the environment', async () => {
    const files = { 'ca.pem': CA, 'client.crt': CERT, 'client.key': ENCRYPTED_KEY };
    const loaded = await load({ ssl: { caFile: 'ca.pem', certFile: 'client.crt', keyFile: './client.key', passphrase: PASSPHRASE } }, {}, files);
    assert.deepEqual(clientConfig(loaded).ssl, { ca: CA, cert: CERT, key: ENCRYPTED_KEY, passphrase: PASSPHRASE });
    const ssl = loaded.config.kafka.ssl as { keyFile: string };
    assert.ok(ssl.keyFile.startsWith('/') && ssl.keyFile.endsWith('/client.key'), 'a relative path is made absolute against the config directory');

    const fromEnv = await load({}, { VERDICT_KAFKA__SSL__CA_FILE: 'ca.pem', VERDICT_KAFKA__SSL__REJECT_UNAUTHORIZED: 'true', VERDICT_KAFKA__SSL__SERVERNAME: 'kafka.example' }, files);
    assert.deepEqual(clientConfig(fromEnv).ssl, { ca: CA, servername: 'kafka.example', rejectUnauthorized: true });
  });

  test('PEM inline from the environment keeps its line breaks (it is not read as YAML)', async () => {
    const loaded = await load({}, { VERDICT_KAFKA__SSL__KEY: ENCRYPTED_KEY, VERDICT_KAFKA__SSL__PASSPHRASE: PASSPHRASE });
    assert.deepEqual(clientConfig(loaded).ssl, { key: ENCRYPTED_KEY, passphrase: PASSPHRASE });
  });

  test('a file and inline text for one item, or an unreadable file, are refused at load naming the field', async () => {
    await assert.rejects(load({ ssl: { key: ENCRYPTED_KEY, keyFile: 'client.key' } }, {}, { 'client.key': ENCRYPTED_KEY }),
      /kafka\.ssl\.keyFile: give key or keyFile, not both/);
    await assert.rejects(load({ ssl: { certFile: 'missing.crt' } }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /kafka\.ssl\.certFile: cannot read \/.*\/missing\.crt: ENOENT/);
      return true;
    });
  });

  test('the effective config shows file paths but redacts PEM text, the passphrase and the SASL password', async () => {
    const loaded = await load({
      ssl: { ca: CA, certFile: 'client.crt', key: ENCRYPTED_KEY, passphrase: PASSPHRASE },
      sasl: { mechanism: 'plain', username: 'verdict', password: 'pw' },
    }, {}, { 'client.crt': CERT });
    const { value, paths } = redactSecrets(loaded.config);
    assert.deepEqual([...paths].sort(), ['kafka.sasl.password', 'kafka.ssl.ca', 'kafka.ssl.key', 'kafka.ssl.passphrase']);
    const ssl = value.kafka.ssl as Record<string, unknown>;
    assert.equal(ssl['key'], REDACTED);
    assert.match(String(ssl['certFile']), /client\.crt$/);
    assert.equal(value.kafka.sasl?.username, 'verdict');
  });
});
