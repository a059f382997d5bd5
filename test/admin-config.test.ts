/**
 * The admin config block (defaults, the token from the environment) and the effective config the admin API
 * shows, with every secret redacted.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { resolveDaemonConfig } from '../config/load-daemon.js';
import { REDACTED, redactSecrets } from '../config/redact.js';
import { DaemonAdmin } from '../runtime/admin/daemon-admin.js';
import { createMetrics } from '../core/metrics.js';
import { packageRoot } from '../core/paths.js';

// Real PEM (the throwaway fixtures, test/fixtures/tls/README.md): the config's TLS material is parsed at load.
const TLS_DIR = resolve(packageRoot, 'test/fixtures/tls');
const SECRETS = {
  saslPassword: 'sasl-Pa55word-!@#',
  tlsKey: readFileSync(resolve(TLS_DIR, 'client.key'), 'utf8'),
  tlsCert: readFileSync(resolve(TLS_DIR, 'client.crt'), 'utf8'),
  tlsCa: readFileSync(resolve(TLS_DIR, 'ca.crt'), 'utf8'),
  adminToken: '0123456789012345678901234567',
};

const raw = () => ({
  pipeline: '/srv/verdict/pipeline.yaml',
  kafka: {
    brokers: ['kafka-1:9093'],
    groupId: 'card-risk',
    ssl: { ca: [SECRETS.tlsCa], cert: SECRETS.tlsCert, key: SECRETS.tlsKey, rejectUnauthorized: true },
    sasl: { mechanism: 'scram-sha-512' as const, username: 'verdict', password: SECRETS.saslPassword },
  },
});

describe('admin config', () => {
  test('defaults: 127.0.0.1:9465 and no token (off)', () => {
    const { config } = resolveDaemonConfig(raw(), { source: 't', baseDir: '/' });
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 9465 });
  });

  test('VERDICT_ADMIN__TOKEN sets the token verbatim: a token of digits stays a string', () => {
    const { config, overridden } = resolveDaemonConfig(raw(), { source: 't', baseDir: '/', env: { VERDICT_ADMIN__TOKEN: SECRETS.adminToken, VERDICT_ADMIN__PORT: '0' } });
    assert.equal(config.admin.token, SECRETS.adminToken);
    assert.equal(config.admin.port, 0);
    assert.deepEqual([...overridden].sort(), ['admin.port', 'admin.token']);
  });

  test('the CLI\'s VERDICT_ADMIN_TOKEN and VERDICT_ADMIN_URL are not config paths', () => {
    const { config, overridden } = resolveDaemonConfig(raw(), { source: 't', baseDir: '/', env: { VERDICT_ADMIN_TOKEN: 'x', VERDICT_ADMIN_URL: 'http://h:1' } });
    assert.equal(config.admin.token, undefined);
    assert.deepEqual(overridden, []);
  });

  test('a short token is refused with the field path', () => {
    assert.throws(() => resolveDaemonConfig({ ...raw(), admin: { token: 'short' } }, { source: 't', baseDir: '/' }),
      { code: 'CONFIG_INVALID', message: /admin\.token: must be at least 16 characters/ });
  });

  test('a token with whitespace is refused (no Authorization header could carry it); an empty one leaves the API off', () => {
    for (const token of ['a token with spaces 123', 'tab\tinside-the-token-value', 'trailing-space-token-value ']) {
      assert.throws(() => resolveDaemonConfig({ ...raw(), admin: { token } }, { source: 't', baseDir: '/' }),
        { code: 'CONFIG_INVALID', message: /admin\.token: must not contain spaces/ }, JSON.stringify(token));
    }
    const { config } = resolveDaemonConfig(raw(), { source: 't', baseDir: '/', env: { VERDICT_ADMIN__TOKEN: '' } });
    assert.equal(config.admin.token, undefined);
  });
});

describe('effective config, redacted', () => {
  test('the admin API\'s config holds none of the secret values, and says which paths it redacted', () => {
    const loaded = resolveDaemonConfig({ ...raw(), admin: { token: SECRETS.adminToken } }, { source: 't', baseDir: '/' });
    const admin = new DaemonAdmin({
      loaded, metrics: createMetrics(), lifecycle: () => 'running', engine: () => undefined, stream: () => undefined, lag: () => undefined, now: () => 0,
    });
    const shown = admin.config();
    const text = JSON.stringify(shown);
    for (const [name, secret] of Object.entries(SECRETS)) {
      assert.ok(!text.includes(secret), `${name} is not shown`);
      // Nor any recognisable piece of it.
      for (const line of secret.split('\n').filter((l) => l.length >= 8 && !l.startsWith('-----'))) assert.ok(!text.includes(line), `${name}: ${line}`);
    }
    assert.deepEqual([...shown.redacted].sort(), ['admin.token', 'kafka.sasl.password', 'kafka.ssl.ca', 'kafka.ssl.cert', 'kafka.ssl.key']);
    const config = shown.config as typeof loaded.config;
    assert.equal(config.kafka.sasl?.password, REDACTED);
    assert.equal(config.kafka.sasl?.username, 'verdict', 'a user name is not a secret');
    assert.equal(config.admin.token, REDACTED);
    assert.equal(config.admin.port, 9465, 'the rest is the effective config, defaults applied');
    assert.equal(config.kafka.sessionTimeout, 30_000);
    assert.equal(shown.pipeline, '/srv/verdict/pipeline.yaml');
    assert.equal(loaded.config.kafka.sasl?.password, SECRETS.saslPassword, 'the daemon\'s own config is untouched');
  });

  test('redaction goes by key name at any depth, and leaves absent secrets absent', () => {
    const { value, paths } = redactSecrets({
      a: { apiKey: 'k1', privateKey: 'k2', clientSecret: 's', passphrase: 'p', credentials: { user: 'u' }, keyCount: 3, key: null },
      list: [{ token: 't' }, { name: 'n' }],
      ssl: true,
    });
    assert.deepEqual(value, {
      a: { apiKey: REDACTED, privateKey: REDACTED, clientSecret: REDACTED, passphrase: REDACTED, credentials: REDACTED, keyCount: 3, key: null },
      list: [{ token: REDACTED }, { name: 'n' }],
      ssl: true,
    });
    assert.deepEqual(paths, ['a.apiKey', 'a.privateKey', 'a.clientSecret', 'a.passphrase', 'a.credentials', 'list.0.token']);
  });
});
