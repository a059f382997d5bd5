/**
 * The librdkafka producer is an optional dependency (README "Choosing the producer"); these run a real daemon
 * process on a machine without it. The machine is simulated by a copy of this build's dist/ beside a
 * node_modules whose entries are symlinks to this package's, all but @confluentinc: Node resolves a module
 * from the real path of the file that imports it, so dist is copied, not linked, and the dynamic import in
 * streams/kafka/librdkafka-binding.ts finds nothing, exactly as on a machine where `npm ci` dropped it.
 *   - `kafka.producer.client: auto`: the daemon starts, decisions arrive on the output topic over the mock
 *     broker through kafkajs, and one warning line says why;
 *   - `kafka.producer.client: librdkafka`: the daemon refuses to start, exit code 1 and CONFIG_INVALID naming
 *     the package and the README section.
 */
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { stringify as stringifyYaml } from 'yaml';
import { packageRoot } from '../../core/paths.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { LIBRDKAFKA_PACKAGE } from '../../streams/kafka/librdkafka-binding.js';
import { daemonConfigObject, DaemonProcess } from './helpers/daemon-process.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { createTopics, produce, readTopic, transactionMessages, waitForCommittedToEnd, type Topics } from './helpers/kafka-io.js';

const WARN = 40;
const SCOPE = LIBRDKAFKA_PACKAGE.split('/')[0]!;

/** A copy of this build without the optional package; returns its root (its CLI is dist/cli/main.js). */
function buildWithoutLibrdkafka(): string {
  const root = mkdtempSync(join(tmpdir(), 'verdict-no-librdkafka-'));
  const dist = resolve(packageRoot, 'dist');
  const tests = resolve(dist, 'test');
  cpSync(dist, join(root, 'dist'), { recursive: true, filter: (src) => src !== tests && !src.startsWith(tests + sep) });
  // "type": "module": the copied dist/ is ESM, as the package says.
  copyFileSync(resolve(packageRoot, 'package.json'), join(root, 'package.json'));
  const modules = realpathSync(resolve(packageRoot, 'node_modules'));
  mkdirSync(join(root, 'node_modules'));
  for (const entry of readdirSync(modules)) {
    if (entry === SCOPE || entry.startsWith('.')) continue;
    symlinkSync(join(modules, entry), join(root, 'node_modules', entry));
  }
  return root;
}

let h: Harness;
let root: string;
let cli: string;
const daemons: DaemonProcess[] = [];

function writeConfig(topics: Topics, client: string, name: string): { configPath: string; groupId: string } {
  const groupId = uniqueTopic(`g-${name}`);
  const { dir, config } = daemonConfigObject({ bootstrap: h.broker.bootstrap, groupId, topics, kafka: { producer: { client } } });
  const configPath = join(dir, 'daemon.yaml');
  writeFileSync(configPath, stringifyYaml(config));
  return { configPath, groupId };
}

describe(`a daemon without ${LIBRDKAFKA_PACKAGE}`, { timeout: 180_000 }, () => {
  before(async () => {
    h = await startHarness('no-librdkafka', 1);
    root = buildWithoutLibrdkafka();
    cli = join(root, 'dist/cli/main.js');
  });
  after(async () => {
    await Promise.all(daemons.filter((d) => d.alive).map((d) => d.kill()));
    await h.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('client: auto falls back to kafkajs with one warning line, and decides', { timeout: 120_000 }, async () => {
    const topics = await createTopics(h.broker, 'auto', 2);
    const { configPath, groupId } = writeConfig(topics, 'auto', 'auto');
    const daemon = await DaemonProcess.start(configPath, 'auto', 45_000, {}, cli);
    daemons.push(daemon);
    const messages = transactionMessages(20, 14);
    await produce(h.producer, topics.input, messages);
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 60_000);

    const decisions = await readTopic(h.broker, topics.output);
    assert.deepEqual(decisions.map((d) => d.key).sort(), messages.map((m) => m.key).sort(), 'one decision per transaction, through kafkajs');
    assert.deepEqual(await readTopic(h.broker, topics.dlq), [], 'no dead letters');

    const exit = await daemon.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, 'a drained stop');
    const unavailable = daemon.logs.filter((l) => l.msg.includes(`${LIBRDKAFKA_PACKAGE} unavailable`));
    assert.equal(unavailable.length, 1, `one warning line, not one per producer: ${JSON.stringify(unavailable)}`);
    const [line] = unavailable;
    assert.equal(line!.level, WARN);
    assert.equal(line!.msg, `${LIBRDKAFKA_PACKAGE} unavailable: producing with kafkajs (kafka.producer.client: auto)`);
    assert.equal(line!['reason'], `${LIBRDKAFKA_PACKAGE} is not installed`);
    assert.equal(daemon.logs.filter((l) => l.msg === 'librdkafka producer connected').length, 0, 'no librdkafka producer');
    assert.deepEqual(daemon.rawErrors, [], 'nothing on stderr but log lines');
  });

  test('client: librdkafka refuses to start with CONFIG_INVALID naming the package and the README section', { timeout: 90_000 }, async () => {
    const topics = await createTopics(h.broker, 'demand', 1);
    const { configPath } = writeConfig(topics, 'librdkafka', 'demand');
    const daemon = DaemonProcess.launch(configPath, 'demand', {}, cli);
    daemons.push(daemon);
    const exit = await Promise.race([daemon.exited, sleep(60_000, 'timeout' as const, { ref: false })]);
    assert.notEqual(exit, 'timeout', `the daemon did not exit: ${daemon.describeErrors()}`);
    assert.deepEqual(exit, { code: 1, signal: null });
    const stdout = Buffer.concat(daemon.stdout).toString('utf8');
    const stderr = Buffer.concat(daemon.stderr).toString('utf8');
    assert.doesNotMatch(stdout, /verdict running/, 'never running');
    assert.match(stderr, /error CONFIG_INVALID: kafka\.producer\.client is librdkafka, but @confluentinc\/kafka-javascript is not installed \(an optional dependency: README "Choosing the producer"\)/);
  });
});
