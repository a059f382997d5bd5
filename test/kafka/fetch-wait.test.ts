/**
 * The consumer's fetch wait when the config leaves it open: librdkafka's mock cluster (which never wakes a
 * waiting fetch) is recognised by its cluster id and gets the short mock wait, any other broker Kafka's
 * default; a configured wait always wins; a broker that cannot be asked gets Kafka's default and is asked
 * again before the next consumer. Against the fake client on virtual time; the daemon on the real mock is in
 * daemon-fetch-wait.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { BROKER_FETCH_WAIT_MS, MOCK_FETCH_WAIT_MS, parseKafkaOptions } from '../../config/kafka-options.js';
import { TransportError } from '../../core/errors.js';
import { fetchWaitFor, isMockClusterId } from '../../streams/kafka/fetch-wait.js';
import type { ConsumerSettings, KafkaClientFactory } from '../../streams/kafka/kafka-client.js';
import { KafkaSource } from '../../streams/kafka/kafka-source.js';
import { ManualScheduler } from '../helpers/manual-scheduler.js';
import { FakeAdmin, FakeConsumer, collect, fakeOptions, settle } from './helpers/fake-kafka.js';

interface LogLine { readonly level: number; readonly msg: string; readonly [field: string]: unknown }

/** What librdkafka's mock cluster answered here (mock-kafka/, kafkajs admin.describeCluster()). */
const MOCK_ID = 'mockCluster157059bc34a8';
const INFO = 30;
const WARN = 40;

/** A subscribed source without a configured fetch wait (unless `wait`), over a factory that records its consumers' settings. */
async function startSource(admin: FakeAdmin, wait?: number) {
  const settings: ConsumerSettings[] = [];
  const consumers: FakeConsumer[] = [];
  const factory: KafkaClientFactory = {
    consumer: (s) => {
      settings.push(s);
      const consumer = new FakeConsumer();
      consumers.push(consumer);
      return consumer;
    },
    producer: () => { throw new Error('not used'); },
    admin: () => admin,
    partitionReader: () => { throw new Error('not used'); },
  };
  const logs: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as LogLine); } });
  const { maxWaitTimeInMs: _configured, ...rest } = fakeOptions;
  const scheduler = new ManualScheduler();
  const source = new KafkaSource({ ...rest, ...(wait === undefined ? {} : { maxWaitTimeInMs: wait }), logger }, { factory, scheduler, random: () => 1 });
  const seen = collect(source);
  await settle();
  return { source, settings, consumers, logs, scheduler, seen };
}

describe('fetch wait chosen from the broker', () => {
  test('the mock cluster\'s id is recognised, and only it', () => {
    assert.equal(isMockClusterId(MOCK_ID), true);
    assert.equal(isMockClusterId('mockCluster1a2b'), true);
    for (const id of ['MkU3OEVBNTcwNTJENDM2Qk', 'mockCluster', 'mockClusterXYZ', 'redpanda.0b1d3c5e', ' mockCluster1a2b', '']) {
      assert.equal(isMockClusterId(id), false, id);
    }
    assert.deepEqual(fetchWaitFor(MOCK_ID), { ms: MOCK_FETCH_WAIT_MS, source: 'mock-broker', clusterId: MOCK_ID });
    assert.deepEqual(fetchWaitFor('MkU3OEVBNTcwNTJENDM2Qk'), { ms: BROKER_FETCH_WAIT_MS, source: 'broker', clusterId: 'MkU3OEVBNTcwNTJENDM2Qk' });
  });

  test('left open against the mock cluster: the consumer waits the mock wait, said in an info line', async () => {
    const admin = new FakeAdmin();
    admin.cluster = MOCK_ID;
    const s = await startSource(admin);
    assert.equal(admin.clusterIdRequests, 1);
    assert.equal(s.settings.length, 1, 'the consumer starts once the broker answered');
    assert.equal(s.settings[0]?.maxWaitTimeInMs, MOCK_FETCH_WAIT_MS);
    assert.deepEqual(s.source.fetchWait(), { ms: MOCK_FETCH_WAIT_MS, source: 'mock-broker', clusterId: MOCK_ID });
    const line = s.logs.find((l) => l['chosenFor'] === 'mock-broker');
    assert.ok(line, 'an info line says why');
    assert.equal(line.level, INFO);
    assert.equal(line['maxWaitTimeInMs'], MOCK_FETCH_WAIT_MS);
    assert.equal(line['clusterId'], MOCK_ID);
    s.seen.subscription.unsubscribe();
    await s.source.close();
  });

  test('left open against any other broker: Kafka\'s default wait', async () => {
    const admin = new FakeAdmin();
    const s = await startSource(admin);
    assert.equal(s.settings[0]?.maxWaitTimeInMs, BROKER_FETCH_WAIT_MS);
    assert.equal(s.source.fetchWait()?.source, 'broker');
    assert.equal(s.logs.find((l) => l['chosenFor'] === 'broker')?.level, INFO);
    s.seen.subscription.unsubscribe();
    await s.source.close();
  });

  test('a configured wait wins, even against the mock cluster, and the broker is not asked', async () => {
    const admin = new FakeAdmin();
    admin.cluster = MOCK_ID;
    const s = await startSource(admin, 250);
    assert.equal(admin.clusterIdRequests, 0);
    assert.equal(s.settings[0]?.maxWaitTimeInMs, 250);
    assert.deepEqual(s.source.fetchWait(), { ms: 250, source: 'configured' });
    s.seen.subscription.unsubscribe();
    await s.source.close();
  });

  test('a broker that cannot be asked: Kafka\'s default with a warning, and asked again before the next consumer', async () => {
    const admin = new FakeAdmin();
    admin.cluster = new TransportError('admin connect failed', { retryable: true });
    const s = await startSource(admin);
    assert.equal(s.settings[0]?.maxWaitTimeInMs, BROKER_FETCH_WAIT_MS, 'the consumer is not held back');
    assert.equal(s.source.fetchWait()?.source, 'unknown');
    assert.equal(s.logs.find((l) => l['chosenFor'] === 'unknown')?.level, WARN);

    // The consumer crashes; by the time its replacement starts, the broker answers.
    admin.cluster = MOCK_ID;
    s.consumers[0]?.h.crashed(new TransportError('connection lost', { retryable: true }));
    s.scheduler.advance(100); // the restart backoff's ceiling with random() = 1
    await settle();
    await settle();
    assert.equal(admin.clusterIdRequests, 2);
    assert.equal(s.settings.length, 2);
    assert.equal(s.settings[1]?.maxWaitTimeInMs, MOCK_FETCH_WAIT_MS);
    assert.equal(s.source.fetchWait()?.source, 'mock-broker');

    // Known now: a third consumer does not ask again.
    s.consumers[1]?.h.crashed(new TransportError('connection lost', { retryable: true }));
    s.scheduler.advance(200);
    await settle();
    assert.equal(s.settings.length, 3);
    assert.equal(admin.clusterIdRequests, 2);
    assert.equal(s.settings[2]?.maxWaitTimeInMs, MOCK_FETCH_WAIT_MS);
    s.seen.subscription.unsubscribe();
    await s.source.close();
  });

  test('the daemon\'s kafka block leaves the wait open by default, and stallTimeoutMs is checked against the longest wait it may get', () => {
    assert.equal(parseKafkaOptions({ brokers: ['k:9092'] }).maxWaitTimeInMs, undefined);
    assert.equal(parseKafkaOptions({ brokers: ['k:9092'], maxWaitTimeInMs: 5 }).maxWaitTimeInMs, 5);
    // Unset: the wait may be Kafka's default, so the watchdog needs more than twice that.
    assert.throws(() => parseKafkaOptions({ brokers: ['k:9092'], stallTimeoutMs: 2 * BROKER_FETCH_WAIT_MS }),
      new RegExp(`stallTimeoutMs: must be 0 \\(off\\) or above twice maxWaitTimeInMs \\(${2 * BROKER_FETCH_WAIT_MS}\\): unset, the wait is chosen at start`));
    assert.equal(parseKafkaOptions({ brokers: ['k:9092'], stallTimeoutMs: 2 * BROKER_FETCH_WAIT_MS + 1 }).stallTimeoutMs, 2 * BROKER_FETCH_WAIT_MS + 1);
    // Given: checked against what was given.
    assert.equal(parseKafkaOptions({ brokers: ['k:9092'], maxWaitTimeInMs: 5, stallTimeoutMs: 11 }).stallTimeoutMs, 11);
    assert.throws(() => parseKafkaOptions({ brokers: ['k:9092'], maxWaitTimeInMs: 100, stallTimeoutMs: 200 }), /above twice maxWaitTimeInMs \(200\)$/m);
  });
});
