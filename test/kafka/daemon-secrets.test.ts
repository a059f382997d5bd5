/**
 * Secrets never leave the daemon: `verdict run` as a real process, with known (random per run) SASL password,
 * admin token, TLS key passphrase and TLS key and certificate material, from the file and from the environment,
 * inline and as files, at the most verbose log levels (trace, kafkajs debug), driven into errors:
 *   - a broker that cannot be reached (a closed port; an unknown host): the mock broker speaks only PLAINTEXT,
 *     so a daemon with TLS configured cannot talk to it, and these are the connect errors it can meet;
 *   - SASL against the mock broker, which refuses the SASL handshake (it has no SASL);
 *   - configs that are refused: an invalid field next to valid secrets, a secret that is itself invalid
 *     (too short, with a space, of the wrong type, under an unsupported mechanism), YAML that does not parse on
 *     the secret's line, an environment value that is not valid YAML, a key file that does not exist;
 *   - admin calls with the right token (status, effective config, `verdict admin config`) and wrong ones
 *     (a near miss, none, in the query string, in the path).
 * Every byte of stdout, stderr, /metrics, /healthz, /readyz, the admin answers and the CLI's output is searched
 * for each secret, plain and encoded, and for each 8-character piece of it (helpers/secret-search.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { stringify as stringifyYaml } from 'yaml';
import { REDACTED } from '../../config/redact.js';
import { packageRoot } from '../../core/paths.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { DaemonProcess } from './helpers/daemon-process.js';
import { describeEachProducer, type TestProducerClient } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { createTopics, type Topics } from './helpers/kafka-io.js';
import { daemonConfigObject } from './helpers/daemon-process.js';
import { describeLeaks, findLeaks, type Place, type Secret } from './helpers/secret-search.js';

const run = promisify(execFile);
const cli = resolve(packageRoot, 'dist/cli/main.js');

/** Letters and digits only, so that the plain form and the URL-encoded one are the same text. */
const random = (prefix: string): string => `${prefix}${randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '')}`;
const SASL_PASSWORD = random('pw');
const ADMIN_TOKEN = random('tk');
const PASSPHRASE = random('pp');
const { privateKey: INLINE_KEY } = generateKeyPairSync('ec', {
  namedCurve: 'P-256',
  privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASSPHRASE },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const TLS_DIR = resolve(packageRoot, 'test/fixtures/tls');
const FILE_KEY = readFileSync(join(TLS_DIR, 'client.key'), 'utf8');
const FILE_CERT = readFileSync(join(TLS_DIR, 'client.crt'), 'utf8');

const SECRETS = {
  password: { name: 'SASL password', value: SASL_PASSWORD },
  token: { name: 'admin token', value: ADMIN_TOKEN },
  passphrase: { name: 'TLS key passphrase', value: PASSPHRASE },
  inlineKey: { name: 'TLS key (inline PEM)', value: INLINE_KEY, pem: true },
  fileKey: { name: 'TLS key (file)', value: FILE_KEY, pem: true },
  fileCert: { name: 'TLS certificate (file)', value: FILE_CERT, pem: true },
} satisfies Record<string, Secret>;

/** Asserts none of `secrets` is in any of `places`. */
function assertNoLeak(places: readonly Place[], secrets: readonly Secret[]): void {
  const leaks = findLeaks(places, secrets);
  assert.equal(leaks.length, 0, `secrets leaked:\n${describeLeaks(leaks)}`);
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

let h: Harness;
let topics: Topics;
/** The producer of the suite running (set by its `before`): every config written here names it. */
let producer: TestProducerClient;

/** A daemon config (the sample pipeline on this file's topics) with this `kafka` block merged in and `admin` as given; returns its path. */
function writeConfig(name: string, kafka: Record<string, unknown>, admin: Record<string, unknown>, extra: Record<string, unknown> = {}): { path: string; dir: string } {
  const { dir, config } = daemonConfigObject({ producer, bootstrap: h.broker.bootstrap, groupId: uniqueTopic(`g-${name}`), topics, logLevel: 'trace', kafka: {
    logLevel: 'debug',
    // Producer connect retries keep the daemon up a few seconds before it gives up: time for the admin calls.
    producer: { retries: 4, initialRetryTime: 500, maxRetryTime: 1_500 },
    ...kafka,
  } });
  const path = join(dir, 'daemon.yaml');
  writeFileSync(path, stringifyYaml({ ...config, admin: { host: '127.0.0.1', port: 0, ...admin }, ...extra }));
  return { path, dir };
}

interface Answer { readonly status: number; readonly text: string }

async function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers });
  return { status: response.status, text: await response.text() };
}

/** `verdict admin …`, its output as places. */
async function verdictAdmin(args: readonly string[], env: Record<string, string>): Promise<{ code: number; places: Place[] }> {
  let out: { code: number; stdout: string; stderr: string };
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, 'admin', ...args], { env: { ...process.env, ...env }, timeout: 30_000 });
    out = { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    out = { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
  return { code: out.code, places: [{ where: `verdict admin ${args[0] ?? ''} stdout`, text: out.stdout }, { where: `verdict admin ${args[0] ?? ''} stderr`, text: out.stderr }] };
}

/**
 * Runs a daemon expected to fail on its broker: the admin calls (right and wrong tokens) and the endpoints
 * while it retries, then its whole output once it has exited. Returns every place and its exit code.
 */
async function provokeBrokerFailure(name: string, configPath: string, env: Record<string, string>, cliCalls: boolean): Promise<{ places: Place[]; code: number | null; stderr: string; config: Record<string, unknown> }> {
  const daemon = DaemonProcess.launch(configPath, name, env);
  const places: Place[] = [];
  let config: Record<string, unknown> = {};
  try {
    const listening = await daemon.waitForLog((l) => l.msg === 'admin API listening', 'the admin API listening', 30_000);
    const port = listening['port'] as number;
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    // A near miss: the real token with its last character changed.
    const nearMiss = `${ADMIN_TOKEN.slice(0, -1)}${ADMIN_TOKEN.endsWith('x') ? 'y' : 'x'}`;
    const calls: Array<[string, Promise<Answer>, number]> = [
      ['GET /admin/status', get(port, '/admin/status', auth), 200],
      ['GET /admin/config', get(port, '/admin/config', auth), 200],
      ['GET /admin/status, near-miss token', get(port, '/admin/status', { authorization: `Bearer ${nearMiss}` }), 401],
      ['POST /admin/pause, near-miss token', get(port, '/admin/pause', { authorization: `Bearer ${nearMiss}` }, 'POST'), 401],
      ['GET /admin/status, no token', get(port, '/admin/status'), 401],
      ['GET /admin/status?token=…', get(port, `/admin/status?token=${ADMIN_TOKEN}`), 401],
      ['GET /admin/<token>', get(port, `/admin/${ADMIN_TOKEN}`), 401],
      ['GET /metrics', get(port, '/metrics'), 200],
      ['GET /healthz', get(port, '/healthz'), 200],
      ['GET /readyz', get(port, '/readyz'), 503],
    ];
    for (const [what, answer, status] of calls) {
      const { status: got, text } = await answer;
      assert.equal(got, status, `${name}: ${what} answered ${got}: ${text}`);
      places.push({ where: `${what} answer`, text });
      if (what === 'GET /admin/config') config = JSON.parse(text) as Record<string, unknown>;
    }
    if (cliCalls) {
      const url = `http://127.0.0.1:${port}`;
      const right = await verdictAdmin(['config', '--url', url, '--json'], { VERDICT_ADMIN_TOKEN: ADMIN_TOKEN });
      assert.equal(right.code, 0, `verdict admin config: ${right.places.map((p) => p.text).join('\n')}`);
      const wrong = await verdictAdmin(['status', '--url', url], { VERDICT_ADMIN_TOKEN: nearMiss });
      assert.equal(wrong.code, 1);
      places.push(...right.places, ...wrong.places);
    }
    const exit = await Promise.race([daemon.exited, sleep(90_000, 'timeout' as const, { ref: false })]);
    assert.notEqual(exit, 'timeout', `${name} did not give up on its broker within 90 s`);
  } finally {
    if (daemon.alive) await daemon.kill();
  }
  const stdout = Buffer.concat(daemon.stdout).toString('utf8');
  const stderr = Buffer.concat(daemon.stderr).toString('utf8');
  places.push({ where: `${name} stdout`, text: stdout }, { where: `${name} stderr`, text: stderr });
  return { places, code: (await daemon.exited).code, stderr, config };
}

/** Runs a daemon whose config is refused; its exit code and output. */
async function refused(name: string, configPath: string, env: Record<string, string> = {}): Promise<{ code: number | null; places: Place[]; stderr: string }> {
  const daemon = DaemonProcess.launch(configPath, name, env);
  const exit = await Promise.race([daemon.exited, sleep(30_000, 'timeout' as const, { ref: false })]);
  if (exit === 'timeout') {
    await daemon.kill();
    assert.fail(`${name}: a refused config did not end the process within 30 s`);
  }
  const stdout = Buffer.concat(daemon.stdout).toString('utf8');
  const stderr = Buffer.concat(daemon.stderr).toString('utf8');
  return { code: exit.code, stderr, places: [{ where: `${name} stdout`, text: stdout }, { where: `${name} stderr`, text: stderr }] };
}

describeEachProducer('secrets never appear in output', { timeout: 400_000 }, (client) => {
  before(async () => {
    producer = client;
    h = await startHarness('secrets', 1);
    topics = await createTopics(h.broker, 'secrets', 1);
  });
  after(async () => { await h.close(); });

  test('the search finds a secret where there is one (the check can fail)', () => {
    const config = readFileSync(writeConfig('search', { sasl: { mechanism: 'plain', username: 'u', password: SASL_PASSWORD } }, { token: ADMIN_TOKEN }).path, 'utf8');
    const leaks = findLeaks([{ where: 'the config file', text: config }, { where: 'a piece', text: `…${ADMIN_TOKEN.slice(3, 12)}…` }], [SECRETS.password, SECRETS.token]);
    assert.deepEqual([...new Set(leaks.map((l) => `${l.secret} in ${l.where}`))].sort(),
      ['SASL password in the config file', 'admin token in a piece', 'admin token in the config file']);
    const encoded = findLeaks([{ where: 'base64', text: `Basic ${Buffer.from(`\u0000user\u0000${SASL_PASSWORD}`).toString('base64')}` }], [SECRETS.password]);
    assert.ok(encoded.some((l) => l.form.startsWith('base64')), 'a base64-encoded secret at any alignment is found');
    const pem = findLeaks([{ where: 'a PEM line', text: INLINE_KEY.split('\n')[2] ?? '' }], [SECRETS.inlineKey]);
    assert.ok(pem.length > 0, 'a line of a PEM body is found');
  });

  test('a closed broker port, TLS from files, SASL and the admin token from the environment', { timeout: 150_000 }, async () => {
    const port = await closedPort();
    const { path } = writeConfig('closed-port', {
      brokers: [`127.0.0.1:${port}`],
      // The TLS server name only the kafkajs producer can set (librdkafka has no setting for it: refused at load).
      ssl: { caFile: join(TLS_DIR, 'client.crt'), certFile: join(TLS_DIR, 'client.crt'), keyFile: join(TLS_DIR, 'client.key'), ...(client === 'kafkajs' ? { servername: 'kafka.internal' } : {}) },
    }, {});
    const env = {
      VERDICT_KAFKA__SASL__MECHANISM: 'scram-sha-512', VERDICT_KAFKA__SASL__USERNAME: 'verdict', VERDICT_KAFKA__SASL__PASSWORD: SASL_PASSWORD,
      VERDICT_ADMIN__TOKEN: ADMIN_TOKEN,
    };
    const { places, code, stderr, config } = await provokeBrokerFailure('closed-port', path, env, true);
    assert.equal(code, 1, 'the daemon fails when no broker can be reached');
    // Each client's own words: Node's error code through kafkajs, librdkafka's log line in the connect error.
    assert.match(stderr, client === 'kafkajs' ? /ECONNREFUSED/ : /Connection refused/, 'the provoked error is the one meant: connection refused');
    assert.deepEqual([...(config['redacted'] as string[])].sort(), ['admin.token', 'kafka.sasl.password']);
    assertNoLeak(places, [SECRETS.password, SECRETS.token, SECRETS.fileKey, SECRETS.fileCert]);
  });

  test('an unknown broker host, TLS inline with an encrypted key, SASL and the admin token in the file', { timeout: 150_000 }, async () => {
    const { path } = writeConfig('unknown-host', {
      brokers: ['verdict-secrets-test.invalid:9093'],
      ssl: { ca: FILE_CERT, key: INLINE_KEY, passphrase: PASSPHRASE, rejectUnauthorized: true },
      sasl: { mechanism: 'plain', username: 'verdict', password: SASL_PASSWORD },
    }, { token: ADMIN_TOKEN });
    const { places, code, stderr, config } = await provokeBrokerFailure('unknown-host', path, {}, false);
    assert.equal(code, 1);
    assert.match(stderr, client === 'kafkajs' ? /ENOTFOUND|EAI_AGAIN|getaddrinfo/ : /Failed to resolve/, 'the provoked error is the one meant: the host does not resolve');
    assert.deepEqual([...(config['redacted'] as string[])].sort(), ['admin.token', 'kafka.sasl.password', 'kafka.ssl.ca', 'kafka.ssl.key', 'kafka.ssl.passphrase']);
    const shown = config['config'] as { kafka: { ssl: Record<string, unknown> } };
    assert.equal(shown.kafka.ssl['key'], REDACTED);
    assertNoLeak(places, [SECRETS.password, SECRETS.token, SECRETS.passphrase, SECRETS.inlineKey, SECRETS.fileCert]);
  });

  test('SASL against the mock broker, which has no SASL (PLAINTEXT only) and refuses the handshake', { timeout: 150_000 }, async () => {
    const { path } = writeConfig('mock-sasl', {
      sasl: { mechanism: 'scram-sha-256', username: 'verdict', password: SASL_PASSWORD },
    }, {}, {});
    const { places, code, stderr } = await provokeBrokerFailure('mock-sasl', path, { VERDICT_ADMIN__TOKEN: ADMIN_TOKEN }, false);
    assert.equal(code, 1);
    assert.match(stderr, client === 'kafkajs' ? /does not support/ : /SASL Handshake not supported/, 'the broker answered and refused SASL');
    assertNoLeak(places, [SECRETS.password, SECRETS.token]);
  });

  test('refused configs name the field, never the value', { timeout: 120_000 }, async () => {
    const valid = { sasl: { mechanism: 'plain', username: 'verdict', password: SASL_PASSWORD }, ssl: { key: INLINE_KEY, passphrase: PASSPHRASE } };
    const shortToken = random('t').slice(0, 12);
    const spaced = `${ADMIN_TOKEN.slice(0, 10)} ${ADMIN_TOKEN.slice(10)}`;
    const cases: Array<{ name: string; write: () => string; env?: Record<string, string>; message: RegExp; secrets: Secret[] }> = [
      {
        name: 'an invalid field next to the secrets',
        write: () => writeConfig('invalid-field', { ...valid, brokers: ['no-port'] }, { token: ADMIN_TOKEN }, { metrics: { port: 'x' } }).path,
        message: /kafka\.brokers\[0\]: must be host:port/, secrets: [SECRETS.password, SECRETS.token, SECRETS.passphrase, SECRETS.inlineKey],
      },
      {
        name: 'a token too short', write: () => writeConfig('short-token', valid, { token: shortToken }).path,
        message: /admin\.token: must be at least 16 characters/, secrets: [{ name: 'short token', value: shortToken }, SECRETS.password],
      },
      {
        name: 'a token with a space', write: () => writeConfig('spaced-token', valid, {}).path, env: { VERDICT_ADMIN__TOKEN: spaced },
        message: /admin\.token: must not contain spaces/, secrets: [{ name: 'spaced token', value: spaced }, SECRETS.password],
      },
      {
        name: 'a password of the wrong type under an unsupported mechanism',
        write: () => writeConfig('bad-sasl', { sasl: { mechanism: 'oauthbearer', username: 'u', password: { nested: SASL_PASSWORD } } }, { token: ADMIN_TOKEN }).path,
        message: /kafka\.sasl\.mechanism: must be one of/, secrets: [SECRETS.password, SECRETS.token],
      },
      {
        name: 'YAML that breaks on the password line',
        write: () => rawConfig('yaml-quote', `  sasl: { mechanism: plain, username: u, password: "${SASL_PASSWORD}\n`),
        message: /not valid YAML: [A-Z_]+ at line \d+, column \d+/, secrets: [SECRETS.password],
      },
      {
        name: 'a duplicate password key',
        write: () => rawConfig('yaml-dup', `  sasl:\n    mechanism: plain\n    username: u\n    password: ${SASL_PASSWORD}\n    password: ${SASL_PASSWORD}x\n`),
        message: /DUPLICATE_KEY at line/, secrets: [SECRETS.password],
      },
      {
        name: 'a password read as a YAML alias', write: () => rawConfig('yaml-alias', `  sasl: { mechanism: plain, username: u, password: *${SASL_PASSWORD} }\n`),
        message: /an alias .* refers to no anchor/, secrets: [SECRETS.password],
      },
      {
        name: 'a password read as a YAML tag', write: () => rawConfig('yaml-tag', `  sasl: { mechanism: plain, username: u, password: !${SASL_PASSWORD} }\n`),
        message: /TAG_RESOLVE_FAILED at line/, secrets: [SECRETS.password],
      },
      {
        name: 'an environment value that is not valid YAML', write: () => writeConfig('env-yaml', valid, { token: ADMIN_TOKEN }).path,
        env: { VERDICT_METRICS__HOST: `{ host: ${SASL_PASSWORD}`, VERDICT_KAFKA__SSL__KEY: INLINE_KEY },
        message: /VERDICT_METRICS__HOST \(metrics\.host\): not valid YAML/, secrets: [SECRETS.password, SECRETS.token, SECRETS.inlineKey],
      },
      {
        name: 'a key file that does not exist', write: () => writeConfig('no-key-file', { ssl: { keyFile: 'missing.key', passphrase: PASSPHRASE } }, { token: ADMIN_TOKEN }).path,
        message: /kafka\.ssl\.keyFile: cannot read .*missing\.key: ENOENT/, secrets: [SECRETS.passphrase, SECRETS.token],
      },
      {
        // Parsed at load (config/tls-material.ts), not first met as broker connect failures.
        name: 'a wrong passphrase for the inline key',
        write: () => writeConfig('wrong-passphrase', { ssl: { key: INLINE_KEY, certFile: join(TLS_DIR, 'client.crt') } }, { token: ADMIN_TOKEN }).path,
        env: { VERDICT_KAFKA__SSL__PASSPHRASE: `${PASSPHRASE}x` },
        message: /kafka\.ssl\.key: cannot be decrypted with kafka\.ssl\.passphrase/,
        secrets: [SECRETS.passphrase, SECRETS.inlineKey, SECRETS.fileCert, SECRETS.token],
      },
      {
        name: 'a key that is not the certificate\'s',
        write: () => writeConfig('key-mismatch', { ssl: { key: INLINE_KEY, passphrase: PASSPHRASE, certFile: join(TLS_DIR, 'client.crt') } }, { token: ADMIN_TOKEN }).path,
        message: /kafka\.ssl\.key: is not the private key of the certificate in kafka\.ssl\.certFile/,
        secrets: [SECRETS.passphrase, SECRETS.inlineKey, SECRETS.fileCert, SECRETS.token],
      },
    ];
    for (const c of cases) {
      const { code, stderr, places } = await refused(c.name, c.write(), c.env);
      const leaks = findLeaks(places, c.secrets);
      assert.equal(leaks.length, 0, `${c.name}: secrets leaked:\n${describeLeaks(leaks)}`);
      assert.equal(code, 1, `${c.name}: exit code`);
      assert.match(stderr, /error CONFIG_INVALID: /, `${c.name}: refused as CONFIG_INVALID`);
      assert.match(stderr, c.message, `${c.name}: the message names what is wrong`);
    }
  });
});

/** A daemon config written by hand, its `kafka` block ending with `kafkaTail` (YAML text). */
function rawConfig(name: string, kafkaTail: string): string {
  const { dir, path } = writeConfig(name, {}, {});
  const file = join(dir, 'raw.yaml');
  writeFileSync(file, `pipeline: ${JSON.stringify(join(dir, 'pipeline.yaml'))}\nadmin:\n  token: ${ADMIN_TOKEN}\nkafka:\n  brokers: ["127.0.0.1:9"]\n${kafkaTail}`);
  void path;
  return file;
}
