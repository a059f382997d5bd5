/**
 * The daemon config's `kafka.ssl` and `kafka.sasl` (file and `VERDICT_*` environment) mapped onto what kafkajs
 * is given: each SASL mechanism, TLS on and off, PEM inline or from files, the passphrase, the server name and
 * rejectUnauthorized. The mock broker speaks only PLAINTEXT, so this tests the mapping, not a TLS handshake or
 * a SASL exchange; the TLS options are still handed to Node's own `tls.createSecureContext`, which decrypts the
 * key with the passphrase. Bad TLS material (a key that does not parse or decrypt, a bad certificate, a key not
 * the cert's) is refused at load naming the field, never quoting it.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { describe, test } from 'node:test';
import { stringify as stringifyYaml } from 'yaml';
import { loadDaemonConfig, type LoadedDaemonConfig } from '../../config/load-daemon.js';
import { REDACTED, redactSecrets } from '../../config/redact.js';
import { ConfigError } from '../../core/errors.js';
import { packageRoot } from '../../core/paths.js';
import { silentLogger } from '../../core/log.js';
import { kafkajsConfig } from '../../streams/kafka/kafkajs-client.js';

const PASSPHRASE = 'key-passphrase-4c1d';
// The throwaway fixtures (test/fixtures/tls/README.md): a client certificate and its key, and a CA certificate.
// The checks at load parse every certificate and match the key to the cert, so these must be real.
const TLS_DIR = resolve(packageRoot, 'test/fixtures/tls');
const CA = readFileSync(join(TLS_DIR, 'ca.crt'), 'utf8');
const CERT = readFileSync(join(TLS_DIR, 'client.crt'), 'utf8');
const PLAIN_KEY = readFileSync(join(TLS_DIR, 'client.key'), 'utf8');
// The client key, encrypted with PASSPHRASE (PKCS#8).
const ENCRYPTED_KEY = createPrivateKey(PLAIN_KEY).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASSPHRASE }) as string;

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

describe('bad TLS material is refused at load, naming the field and quoting none of it', () => {
  // Another key of the cert's type (P-256) that is not the cert's.
  const { privateKey: OTHER_KEY } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const WRONG_PASSPHRASE = 'wrong-passphrase-77a9';
  const GARBAGE = '-----BEGIN CERTIFICATE-----\nZ2FyYmFnZS1ub3QtYS1jZXJ0aWZpY2F0ZQ==\n-----END CERTIFICATE-----\n';
  const GARBAGE_KEY = '-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZS1ub3QtYS1rZXk=\n-----END PRIVATE KEY-----\n';
  const NO_PEM = 'not a pem at all 5e0f';

  /** Every secret given, and each PEM body line (a message could quote a line without the whole PEM). */
  const fragments = (...secrets: string[]): string[] => secrets.flatMap((secret) => [
    secret, ...secret.split('\n').filter((line) => line.length >= 8 && !line.startsWith('-----')),
  ]);

  async function refused(kafka: Record<string, unknown>, path: RegExp, secrets: string[], files: Record<string, string> = {}, env: NodeJS.ProcessEnv = {}): Promise<string> {
    let message = '';
    await assert.rejects(load(kafka, env, files), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, ConfigError.code);
      assert.equal(err.cause, undefined, 'no cause: Node\'s error is not carried along');
      message = err.message;
      return true;
    });
    assert.match(message, path);
    for (const fragment of fragments(...secrets)) assert.ok(!message.includes(fragment), `the message quotes secret material: ${message}`);
    return message;
  }

  test('an encrypted key with a wrong passphrase, inline, from a file and from the environment', async () => {
    const secrets = [ENCRYPTED_KEY, WRONG_PASSPHRASE, CERT];
    const m = await refused({ ssl: { key: ENCRYPTED_KEY, cert: CERT, passphrase: WRONG_PASSPHRASE } }, /kafka\.ssl\.key: cannot be decrypted with kafka\.ssl\.passphrase/, secrets);
    assert.match(m, /ERR_OSSL_BAD_DECRYPT/);
    await refused({ ssl: { keyFile: 'client.key', passphrase: WRONG_PASSPHRASE } }, /kafka\.ssl\.keyFile: cannot be decrypted/, secrets, { 'client.key': ENCRYPTED_KEY });
    await refused({}, /kafka\.ssl\.key: cannot be decrypted/, secrets, {}, { VERDICT_KAFKA__SSL__KEY: ENCRYPTED_KEY, VERDICT_KAFKA__SSL__PASSPHRASE: WRONG_PASSPHRASE });
  });

  test('an encrypted key without a passphrase', async () => {
    await refused({ ssl: { key: ENCRYPTED_KEY } }, /kafka\.ssl\.key: is an encrypted private key and kafka\.ssl\.passphrase is not set/, [ENCRYPTED_KEY]);
    await refused({ ssl: { keyFile: 'k.pem' } }, /kafka\.ssl\.keyFile: is an encrypted private key/, [ENCRYPTED_KEY], { 'k.pem': ENCRYPTED_KEY });
  });

  test('garbage for the key, the cert or a CA (inline, in a list, or in a file)', async () => {
    await refused({ ssl: { key: GARBAGE_KEY } }, /kafka\.ssl\.key: is not a PEM private key/, [GARBAGE_KEY]);
    await refused({ ssl: { key: NO_PEM } }, /kafka\.ssl\.key: is not a PEM private key/, [NO_PEM]);
    await refused({ ssl: { keyFile: 'k.pem', passphrase: PASSPHRASE } }, /kafka\.ssl\.keyFile: is not a PEM private key/, [NO_PEM, PASSPHRASE], { 'k.pem': NO_PEM });
    await refused({ ssl: { cert: NO_PEM } }, /kafka\.ssl\.cert: holds no PEM certificate/, [NO_PEM]);
    await refused({ ssl: { cert: GARBAGE } }, /kafka\.ssl\.cert: certificate 1 of 1 is not a valid PEM certificate/, [GARBAGE]);
    await refused({ ssl: { certFile: 'c.pem' } }, /kafka\.ssl\.certFile: certificate 1 of 1 is not a valid/, [GARBAGE], { 'c.pem': GARBAGE });
    await refused({ ssl: { ca: [CA, NO_PEM] } }, /kafka\.ssl\.ca\[1\]: holds no PEM certificate/, [CA, NO_PEM]);
    // A bundle: the second certificate is the bad one.
    await refused({ ssl: { caFile: 'bundle.pem' } }, /kafka\.ssl\.caFile: certificate 2 of 2 is not a valid PEM certificate/, [CA, GARBAGE], { 'bundle.pem': CA + GARBAGE });
    await refused({ ssl: { ca: CA + GARBAGE } }, /kafka\.ssl\.ca: certificate 2 of 2/, [CA, GARBAGE]);
  });

  test('a key that is not the cert\'s', async () => {
    await refused({ ssl: { key: OTHER_KEY, cert: CERT } }, /kafka\.ssl\.key: is not the private key of the certificate in kafka\.ssl\.cert/, [OTHER_KEY, CERT]);
    await refused({ ssl: { keyFile: 'k.pem', certFile: 'c.pem' } }, /kafka\.ssl\.keyFile: is not the private key of the certificate in kafka\.ssl\.certFile/,
      [OTHER_KEY, CERT], { 'k.pem': OTHER_KEY, 'c.pem': CERT });
    // The CA's certificate is not the client key's either.
    await refused({ ssl: { key: PLAIN_KEY, cert: CA } }, /kafka\.ssl\.key: is not the private key/, [PLAIN_KEY, CA]);
  });

  test('the fixtures are accepted: plain and encrypted key with its cert, a CA bundle, files and inline', async () => {
    const files = { 'client.key': PLAIN_KEY, 'client.crt': CERT, 'bundle.pem': CA + CERT };
    const fromFiles = await load({ ssl: { keyFile: 'client.key', certFile: 'client.crt', caFile: 'bundle.pem' } }, {}, files);
    assert.deepEqual(clientConfig(fromFiles).ssl, { key: PLAIN_KEY, cert: CERT, ca: CA + CERT });
    const inline = await load({ ssl: { key: ENCRYPTED_KEY, passphrase: PASSPHRASE, cert: CERT, ca: [CA, CA + CERT] } });
    assert.deepEqual(clientConfig(inline).ssl, { key: ENCRYPTED_KEY, passphrase: PASSPHRASE, cert: CERT, ca: [CA, CA + CERT] });
    // A passphrase with an unencrypted key is harmless (Node ignores it), as at connect.
    await load({ ssl: { key: PLAIN_KEY, passphrase: PASSPHRASE, cert: CERT } });
  });
});
