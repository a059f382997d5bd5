/**
 * The mock Kafka cluster speaks the real protocol: kafkajs and kcat (librdkafka) produce to it, read from it
 * and see each other's records, consumer groups commit, and injected faults are survived by retries.
 * One 3-broker cluster serves every test; each test uses its own topic and group.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Kafka, Partitioners, logLevel, type Consumer, type Message, type Producer } from 'kafkajs';
import {
  ApiKey,
  KafkaErrorCode,
  MOCK_CONSUMER_TIMINGS,
  startMockBroker,
  uniqueTopic,
  type MockBroker,
} from '../../mock-kafka/mock-broker.js';

const execFileAsync = promisify(execFile);

interface Received {
  readonly partition: number;
  readonly offset: string;
  readonly key: string;
  readonly value: string;
  readonly headers: Record<string, string>;
}

function newKafka(broker: MockBroker, clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: [...broker.bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
}

// The mock reports a controller that does not exist, which breaks kafkajs' idempotent producer.
function newProducer(kafka: Kafka): Producer {
  return kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: false });
}

function decode(partition: number, message: { offset: string; key: Buffer | null; value: Buffer | null; headers?: Message['headers'] }): Received {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    headers[name] = Buffer.isBuffer(value) ? value.toString() : String(value);
  }
  return {
    partition,
    offset: message.offset,
    key: message.key?.toString() ?? '',
    value: message.value?.toString() ?? '',
    headers,
  };
}

/**
 * Consumes `topic` in `groupId` until `count` records arrived, then keeps listening for `settleMs` so that
 * extra records (re-reads, duplicates) would be seen, and disconnects (which commits). Fails after
 * `timeoutMs` rather than hanging the suite.
 */
async function consume(
  kafka: Kafka,
  options: { topic: string; groupId: string; count: number; settleMs?: number; timeoutMs?: number },
): Promise<Received[]> {
  const consumer: Consumer = kafka.consumer({ groupId: options.groupId, ...MOCK_CONSUMER_TIMINGS });
  const received: Received[] = [];
  let reachedCount: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (reachedCount = resolve));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [options.topic], fromBeginning: true });
    await consumer.run({
      eachMessage: ({ partition, message }) => {
        received.push(decode(partition, message));
        if (received.length >= options.count) reachedCount();
        return Promise.resolve();
      },
    });
    const timeoutMs = options.timeoutMs ?? 20_000;
    const timedOut = sleep(timeoutMs, 'timeout' as const, { ref: false });
    if ((await Promise.race([reached.then(() => 'reached' as const), timedOut])) === 'timeout') {
      assert.fail(`consumed ${received.length} of ${options.count} records of ${options.topic} within ${timeoutMs} ms`);
    }
    await sleep(options.settleMs ?? 300);
    return received;
  } finally {
    await consumer.disconnect();
  }
}

async function kcatRead(broker: MockBroker, topic: string): Promise<string[]> {
  const { stdout } = await execFileAsync(
    'kcat',
    ['-C', '-b', broker.bootstrap.join(','), '-t', topic, '-e', '-q', '-f', '%k:%s\\n'],
    { timeout: 15_000 },
  );
  return stdout.split('\n').filter((line) => line.length > 0);
}

async function kcatProduce(broker: MockBroker, topic: string, lines: readonly string[]): Promise<void> {
  const child = spawn('kcat', ['-P', '-b', broker.bootstrap.join(','), '-t', topic, '-K:'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    timeout: 15_000,
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(lines.map((l) => `${l}\n`).join(''));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  assert.equal(code, 0, `kcat -P failed: ${stderr}`);
}

function sortedKeys(records: readonly { key: string }[]): string[] {
  return records.map((r) => r.key).sort();
}

describe('mock Kafka cluster', () => {
  let broker: MockBroker;

  before(async () => {
    broker = await startMockBroker({ brokers: 3 });
  });

  after(async () => {
    await broker.stop();
  });

  test('starts three brokers and refuses an invalid command with the launcher reason', async () => {
    assert.equal(broker.bootstrap.length, 3);
    for (const address of broker.bootstrap) assert.match(address, /^127\.0\.0\.1:\d+$/);
    await assert.rejects(broker.createTopic('bad-partitions', 0), /bad number '0' for partitions/);
    await assert.rejects(broker.setBrokerDown(99), /BROKER_NOT_AVAILABLE/);
  });

  test('kafkajs group consumes every keyed record with headers and resumes after its committed offsets', { timeout: 60_000 }, async () => {
    const topic = uniqueTopic('roundtrip');
    const groupId = uniqueTopic('roundtrip-group');
    await broker.createTopic(topic, 4);
    const kafka = newKafka(broker, 'roundtrip');
    const producer = newProducer(kafka);
    await producer.connect();
    const sent = Array.from({ length: 200 }, (_, i) => ({
      key: `card-${i % 37}-${i}`,
      value: JSON.stringify({ i }),
      headers: { 'trace-id': `t-${i}`, source: 'mock-test' },
    }));
    try {
      await producer.send({ topic, messages: sent });

      const first = await consume(kafka, { topic, groupId, count: sent.length });
      assert.equal(first.length, sent.length, 'each record exactly once');
      assert.deepEqual(sortedKeys(first), sortedKeys(sent));
      for (const r of first) {
        const i = (JSON.parse(r.value) as { i: number }).i;
        assert.equal(r.key, sent[i]?.key);
        assert.deepEqual(r.headers, { 'trace-id': `t-${i}`, source: 'mock-test' });
      }
      assert.equal(new Set(first.map((r) => r.partition)).size, 4, 'the keys spread over all partitions');

      const admin = kafka.admin();
      await admin.connect();
      try {
        const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
        const total = (committed?.partitions ?? []).reduce((sum, p) => sum + Number(p.offset), 0);
        assert.equal(total, sent.length, 'committed offsets cover every consumed record');
      } finally {
        await admin.disconnect();
      }

      const later = [{ key: 'after-restart-1', value: 'a' }, { key: 'after-restart-2', value: 'b' }];
      await producer.send({ topic, messages: later });
      const second = await consume(kafka, { topic, groupId, count: later.length, settleMs: 500 });
      assert.deepEqual(sortedKeys(second), sortedKeys(later), 'nothing before the committed offsets is read again');
    } finally {
      await producer.disconnect();
    }
  });

  test('records produced by kcat are read by a kafkajs consumer', { timeout: 30_000 }, async () => {
    const topic = uniqueTopic('kcat-to-kafkajs');
    await broker.createTopic(topic, 2);
    const lines = Array.from({ length: 20 }, (_, i) => `k${i}:v${i}`);
    await kcatProduce(broker, topic, lines);
    const received = await consume(newKafka(broker, 'kcat-interop'), {
      topic,
      groupId: uniqueTopic('kcat-group'),
      count: lines.length,
    });
    assert.deepEqual(received.map((r) => `${r.key}:${r.value}`).sort(), [...lines].sort());
  });

  test('records produced by kafkajs are read by kcat', { timeout: 30_000 }, async () => {
    const topic = uniqueTopic('kafkajs-to-kcat');
    await broker.createTopic(topic, 3);
    const producer = newProducer(newKafka(broker, 'kafkajs-interop'));
    await producer.connect();
    const messages = Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `v${i}` }));
    try {
      await producer.send({ topic, messages });
    } finally {
      await producer.disconnect();
    }
    const lines = await kcatRead(broker, topic);
    assert.deepEqual(lines.sort(), messages.map((m) => `${m.key}:${m.value}`).sort());
  });

  test('a producer retrying through a two-second leader outage delivers every record', { timeout: 60_000 }, async () => {
    const topic = uniqueTopic('leader-down');
    const leader = 2;
    await broker.createTopic(topic, 4);
    // The mock does not move leadership when a broker goes down, so pin every partition to the broker we stop.
    for (let p = 0; p < 4; p++) await broker.setLeader(topic, p, leader);
    const producer = newProducer(newKafka(broker, 'leader-down'));
    await producer.connect();
    const expected: string[] = [];
    let restored = false;
    try {
      const outage = (async () => {
        await sleep(200);
        await broker.setBrokerDown(leader);
        await sleep(2_000);
        await broker.setBrokerUp(leader);
        restored = true;
      })();
      // Keep producing until the outage is over, so sends are in flight before, during and after it.
      for (let batch = 0; !restored || batch < 5; batch++) {
        const messages = Array.from({ length: 10 }, (_, i) => ({ key: `b${batch}-${i}`, value: 'x' }));
        await producer.send({ topic, messages });
        expected.push(...messages.map((m) => `${m.key}:x`));
        await sleep(100);
      }
      await outage;
    } finally {
      await producer.disconnect();
    }
    const lines = await kcatRead(broker, topic);
    // A non-idempotent producer may write a record twice if a connection dies after the append; loss is the bug.
    assert.deepEqual([...new Set(lines)].sort(), [...expected].sort());
  });

  test('injected NOT_LEADER and REQUEST_TIMED_OUT produce errors are retried without losing records', { timeout: 30_000 }, async () => {
    const topic = uniqueTopic('produce-errors');
    await broker.createTopic(topic, 4);
    const producer = newProducer(newKafka(broker, 'produce-errors'));
    let produceRequests = 0;
    producer.on(producer.events.REQUEST, (event) => {
      if (event.payload.apiName === 'Produce') produceRequests++;
    });
    await producer.connect();
    const batch = (tag: string): { key: string; value: string }[] =>
      Array.from({ length: 40 }, (_, i) => ({ key: `${tag}-${i}`, value: tag }));
    try {
      await producer.send({ topic, messages: batch('clean') });
      const cleanRequests = produceRequests;

      produceRequests = 0;
      await broker.pushRequestErrors(ApiKey.Produce, [
        KafkaErrorCode.NOT_LEADER_OR_FOLLOWER,
        KafkaErrorCode.NOT_LEADER_OR_FOLLOWER,
        KafkaErrorCode.REQUEST_TIMED_OUT,
      ]);
      await producer.send({ topic, messages: batch('faulty') });
      assert.ok(produceRequests > cleanRequests, `retries happened (${produceRequests} vs ${cleanRequests} requests)`);
    } finally {
      await producer.disconnect();
    }
    const lines = await kcatRead(broker, topic);
    const expected = [...batch('clean'), ...batch('faulty')].map((m) => `${m.key}:${m.value}`);
    // Error responses mean nothing was appended, so the retried records appear exactly once.
    assert.deepEqual(lines.sort(), expected.sort());
  });
});
