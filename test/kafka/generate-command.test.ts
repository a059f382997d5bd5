/**
 * `verdict generate` against the mock broker, as the compose file runs it: generated transactions land on the
 * topic keyed by card, `--count` stops it, and SIGTERM stops it with exactly the records it reports sent.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../core/paths.js';
import { startMockBroker, uniqueTopic, type MockBroker } from '../../mock-kafka/mock-broker.js';
import { readTopic } from './helpers/kafka-io.js';

const execFileAsync = promisify(execFile);
const cli = resolve(packageRoot, 'dist/cli/main.js');

describe('verdict generate', () => {
  let broker: MockBroker;

  before(async () => {
    broker = await startMockBroker({ brokers: 1 });
  });
  after(async () => {
    await broker.stop();
  });

  test('--count: that many transactions on the topic, keyed by card, each a valid event', async () => {
    const topic = uniqueTopic('generate-count');
    await broker.createTopic(topic, 3);
    const { stdout } = await execFileAsync('node', [cli, 'generate', '--brokers', broker.bootstrap.join(','), '--topic', topic, '--rate', '2000', '--count', '400', '--poison-rate', '0'], { timeout: 60_000 });
    assert.match(stdout, /generate: sent 400, failed 0/);
    const records = await readTopic(broker, topic);
    assert.equal(records.length, 400);
    const events = records.map((r) => ({ key: r.key, event: JSON.parse(r.value ?? '') as Record<string, unknown> }));
    assert.ok(events.every(({ key, event }) => key === event['key'] && typeof event['amount'] === 'number' && typeof event['ts'] === 'number'));
    assert.equal(new Set(events.map(({ event }) => event['id'])).size, 400);
    assert.ok(new Set(records.map((r) => r.partition)).size > 1, 'keys spread over the partitions');
  });

  test('SIGTERM stops it; the topic holds exactly what it reports sent', async () => {
    const topic = uniqueTopic('generate-sigterm');
    await broker.createTopic(topic, 2);
    const child = spawn('node', [cli, 'generate', '--brokers', broker.bootstrap.join(','), '--topic', topic, '--rate', '500'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    // Running once some records are on the topic.
    for (let i = 0; i < 200 && (await readTopic(broker, topic)).length < 50; i++) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit') as [number | null];
    assert.equal(code, 0);
    const sent = Number(/generate: sent (\d+), failed 0/.exec(stdout)?.[1]);
    assert.ok(sent >= 50, stdout);
    assert.equal((await readTopic(broker, topic)).length, sent);
  });
});
