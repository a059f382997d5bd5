/**
 * KafkaSink: grouping and connection handling against a fake producer, then each producer (kafkajs,
 * librdkafka) against librdkafka's mock cluster: acknowledged multi-topic sends read back exactly, broker errors retried without loss, and
 * errors that outlast the client's retries surfaced as typed TransportErrors.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { RecordRejectedError, TransportError } from '../../core/errors.js';
import { createLogger, silentLogger } from '../../core/log.js';
import type { AdminLike, ConsumerLike, KafkaClientFactory, ProducerLike, ProducerSettings, RefusedRecord, SendBatchOptions, TopicRecords } from '../../streams/kafka/kafka-client.js';
import { KafkaSink } from '../../streams/kafka/kafka-sink.js';
import { KafkaSource } from '../../streams/kafka/kafka-source.js';
import type { InboundRecord, OutboundRecord } from '../../pipeline/record.js';
import { ApiKey, KafkaErrorCode, startMockBroker, uniqueTopic, type MockBroker } from '../../mock-kafka/mock-broker.js';
import { waitUntil, range } from '../helpers/wait.js';
import { headerMap, headersOf } from '../helpers/headers.js';
import { describeEachProducer } from '../helpers/producers.js';

const logger = process.env['VERDICT_TEST_LOG'] === '1' ? createLogger({ level: 'debug' }) : silentLogger;

// ---- against a fake producer -------------------------------------------------------------------------

class FakeProducer implements ProducerLike {
  readonly batches: Array<readonly TopicRecords[]> = [];
  connects = 0;
  disconnected = false;
  failConnects = 0;
  connect(): Promise<void> {
    this.connects++;
    if (this.failConnects > 0) {
      this.failConnects--;
      return Promise.reject(new TransportError('broker unreachable'));
    }
    return Promise.resolve();
  }
  /** While set, each round waits for the test to settle it. */
  hold = false;
  readonly held: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  readonly options: SendBatchOptions[] = [];
  sendBatch(batch: readonly TopicRecords[], options: SendBatchOptions = {}): Promise<readonly RefusedRecord[]> {
    this.batches.push(batch);
    this.options.push(options);
    if (!this.hold) return Promise.resolve([]);
    return new Promise((resolve, reject) => this.held.push({ resolve: () => resolve([]), reject }));
  }
  disconnect(): Promise<void> { this.disconnected = true; return Promise.resolve(); }
}

function fakeFactory(producer: FakeProducer, settings: ProducerSettings[] = []): KafkaClientFactory {
  return {
    consumer: (): ConsumerLike => { throw new Error('not used'); },
    producer: (s) => { settings.push(s); return producer; },
    admin: (): AdminLike => { throw new Error('not used'); },
    partitionReader: () => { throw new Error('not used'); },
  };
}

const rec = (topic: string, key: string | null, value: string, partition?: number): OutboundRecord =>
  partition === undefined ? { topic, key, value, headers: [{ key: 'k', value: key ?? '' }] } : { topic, key, value, headers: [], partition };

describe('KafkaSink (fake producer)', () => {
  test('one send is one produce round, grouped by topic with each topic in send order', async () => {
    const producer = new FakeProducer();
    const settings: ProducerSettings[] = [];
    const sink = new KafkaSink({ brokers: ['unused:9092'], clientId: 'c', producer: { retries: 2 } }, { factory: fakeFactory(producer, settings) });
    const records = [rec('a', 'k1', '1'), rec('b', 'k2', '2'), rec('a', 'k3', '3', 2), rec('b', null, '4'), rec('a', 'k5', '5')];
    await sink.send(records);
    await sink.send([]);
    assert.equal(producer.batches.length, 1, 'one round; an empty send sends nothing');
    assert.deepEqual(producer.batches[0], [
      { topic: 'a', records: [records[0], records[2], records[4]] },
      { topic: 'b', records: [records[1], records[3]] },
    ]);
    assert.deepEqual(settings, [{ client: 'kafkajs', lingerMs: 1, acks: -1, compression: 'none', maxInFlightRequests: 5, retries: 2, initialRetryTime: 100, maxRetryTime: 5_000 }]);
    await sink.close();
    assert.equal(producer.disconnected, true);
    await assert.rejects(sink.send(records), (err: TransportError) => err instanceof TransportError && !err.retryable);
  });

  test('sends arriving while rounds are outstanding are merged into the next round, in arrival order', async () => {
    const producer = new FakeProducer();
    producer.hold = true;
    const sink = new KafkaSink({ brokers: ['unused:9092'], clientId: 'c', maxOutstandingRounds: 1 }, { factory: fakeFactory(producer) });
    const first = sink.send([rec('a', 'k1', '1')]);
    const merged = [sink.send([rec('a', 'k2', '2')]), sink.send([rec('b', 'k3', '3'), rec('a', 'k4', '4')])];
    await waitUntil(() => producer.batches.length === 1, 'the first round');
    assert.equal(producer.held.length, 1, 'one round outstanding; the other two sends wait');
    producer.held.shift()?.resolve();
    await first;
    await waitUntil(() => producer.batches.length === 2, 'the merged round');
    assert.deepEqual(producer.batches[1]?.map((t) => [t.topic, t.records.map((r) => r.value)]), [['a', ['2', '4']], ['b', ['3']]]);
    producer.held.shift()?.reject(new TransportError('broker away'));
    const settled = await Promise.allSettled(merged);
    assert.deepEqual(settled.map((r) => r.status), ['rejected', 'rejected'], 'a failed round fails every send merged into it');
    producer.hold = false;
    await sink.send([rec('a', 'k5', '5')]);
    assert.equal(producer.batches.length, 3);
    await sink.close();
  });

  test('a send that avoids native code is merged only with its like, and the producer is told', async () => {
    const producer = new FakeProducer();
    producer.hold = true;
    const sink = new KafkaSink({ brokers: ['unused:9092'], clientId: 'c', maxOutstandingRounds: 1 }, { factory: fakeFactory(producer) });
    const sends = [
      sink.send([rec('a', null, '1')]), sink.send([rec('a', null, '2')]), sink.send([rec('dlq', null, '3')], { avoidNative: true }),
      sink.send([rec('dlq', null, '4')], { avoidNative: true }), sink.send([rec('a', null, '5')]),
    ];
    for (let round = 0; round < 4; round++) {
      await waitUntil(() => producer.held.length === 1, `round ${round + 1}`);
      producer.held.shift()?.resolve();
    }
    await Promise.all(sends);
    assert.deepEqual(producer.batches.map((b) => b.flatMap((t) => t.records.map((r) => r.value))), [['1'], ['2'], ['3', '4'], ['5']]);
    assert.deepEqual(producer.options.map((o) => o.avoidNative), [false, false, true, false]);
    await sink.close();
  });

  test('a merged round stops at maxRecordsPerRound; a larger single send still goes whole', async () => {
    const producer = new FakeProducer();
    producer.hold = true;
    const sink = new KafkaSink({ brokers: ['unused:9092'], clientId: 'c', maxOutstandingRounds: 1, maxRecordsPerRound: 3 }, { factory: fakeFactory(producer) });
    const many = (n: number, tag: string) => Array.from({ length: n }, (_, i) => rec('a', null, `${tag}${i}`));
    const sends = [sink.send(many(1, 'x')), sink.send(many(5, 'big')), sink.send(many(2, 'y')), sink.send(many(1, 'z'))];
    for (let round = 0; round < 3; round++) {
      await waitUntil(() => producer.held.length === 1, `round ${round + 1}`);
      producer.held.shift()?.resolve();
    }
    await Promise.all(sends);
    assert.deepEqual(producer.batches.map((b) => b[0]?.records.length), [1, 5, 3]);
    await sink.close();
  });

  test('a failed connect fails the send and is tried again by the next one', async () => {
    const producer = new FakeProducer();
    producer.failConnects = 1;
    const sink = new KafkaSink({ brokers: ['unused:9092'], clientId: 'c' }, { factory: fakeFactory(producer) });
    await assert.rejects(sink.send([rec('a', 'k', 'v')]), (err: TransportError) => err.retryable);
    await sink.send([rec('a', 'k', 'v')]);
    await sink.send([rec('a', 'k', 'w')]);
    assert.equal(producer.connects, 2, 'connected once after the failure');
    assert.equal(producer.batches.length, 2);
    await sink.close();
  });
});

// ---- against the mock cluster ------------------------------------------------------------------------

describeEachProducer('KafkaSink (mock Kafka cluster)', {}, (client) => {
  let broker: MockBroker;
  const closers: Array<() => Promise<void>> = [];

  const newSink = (producer: ConstructorParameters<typeof KafkaSink>[0]['producer'] = {}): KafkaSink => {
    const sink = new KafkaSink({ brokers: broker.bootstrap, clientId: 'sink-test', logLevel: 'nothing', logger, producer: { client, ...producer } });
    closers.push(() => sink.close());
    return sink;
  };

  /** Reads every record of the topics from the beginning until `count` arrived, plus a quiet spell for extras. */
  async function readBack(topics: string[], count: number): Promise<InboundRecord[]> {
    const source = new KafkaSource({
      brokers: broker.bootstrap, clientId: 'sink-test-reader', groupId: uniqueTopic('g-readback'), topics, fromBeginning: true,
      sessionTimeout: 6_000, heartbeatInterval: 500, rebalanceTimeout: 6_000, maxBytesPerPartition: 1 << 20, maxWaitTimeInMs: 100,
      logLevel: 'warn', logger,
    });
    const records: InboundRecord[] = [];
    source.events$.subscribe((e) => { if (e.type === 'batch') records.push(...e.batch.records); });
    try {
      await waitUntil(() => records.length >= count, `${count} records`);
      await sleep(300);
    } finally {
      await source.close();
    }
    return records;
  }

  before(async () => {
    broker = await startMockBroker({ brokers: 3 });
  });

  after(async () => {
    for (const close of closers) await close().catch(() => undefined);
    await broker.stop();
  });

  test('a send to two topics is acknowledged and reads back with exact keys, values and headers', async () => {
    const decisions = uniqueTopic('sink-decisions');
    const deadLetters = uniqueTopic('sink-dlq');
    await broker.createTopic(decisions, 3);
    await broker.createTopic(deadLetters, 1);
    const sink = newSink();
    const sent: OutboundRecord[] = [
      ...range(0, 60).map((i): OutboundRecord => ({ topic: decisions, key: `card-${i}`, value: `{"action":"approve","i":${i}}`, headers: headersOf({ 'verdict-pipeline': 'card-risk', seq: String(i) }) })),
      { topic: deadLetters, key: Buffer.from([0, 1, 2, 255]), value: Buffer.from('not json'), headers: headersOf({ 'verdict-error-code': 'INPUT_DECODE_FAILED' }) },
      { topic: deadLetters, key: null, value: 'no key', headers: [] },
    ];
    await sink.send(sent);

    const got = await readBack([decisions, deadLetters], sent.length);
    assert.equal(got.length, sent.length, 'each record once');
    const decided = got.filter((r) => r.topic === decisions);
    for (const r of decided) {
      const i = Number(headerMap(r.headers)['seq']);
      assert.equal(r.key?.toString(), `card-${i}`);
      assert.equal(r.value?.toString(), `{"action":"approve","i":${i}}`);
      assert.deepEqual(r.headers, [{ key: 'verdict-pipeline', value: Buffer.from('card-risk') }, { key: 'seq', value: Buffer.from(String(i)) }]);
    }
    assert.deepEqual(decided.map((r) => Number(headerMap(r.headers)['seq'])).sort((a, b) => a - b), range(0, 60));
    const dead = got.filter((r) => r.topic === deadLetters).sort((a, b) => a.offset - b.offset);
    assert.deepEqual(dead.map((r) => [r.offset, r.key, r.value?.toString(), headerMap(r.headers)]), [
      [0, Buffer.from([0, 1, 2, 255]), 'not json', { 'verdict-error-code': 'INPUT_DECODE_FAILED' }],
      [1, null, 'no key', {}],
    ]);
  });

  test('broker errors the client can retry are retried inside one send, losing and duplicating nothing', async () => {
    const topic = uniqueTopic('sink-retry');
    await broker.createTopic(topic, 1);
    const sink = newSink();
    await sink.send([{ topic, key: 'warm-up', value: 'w', headers: [] }]);
    await broker.pushRequestErrors(ApiKey.Produce, [KafkaErrorCode.NOT_LEADER_OR_FOLLOWER, KafkaErrorCode.NOT_LEADER_OR_FOLLOWER]);
    await sink.send(range(0, 100).map((i) => ({ topic, key: `k${i}`, value: `v${i}`, headers: [] })));
    // A producer that may not retry gets through only if that send used up both injected errors.
    await newSink({ retries: 0 }).send([{ topic, key: 'probe', value: 'p', headers: [] }]);

    const got = await readBack([topic], 102);
    assert.deepEqual(got.map((r) => r.value?.toString()), ['w', ...range(0, 100).map((i) => `v${i}`), 'p'], 'all, once, in order');
  });

  test('errors that outlast the client retries reject with a retryable TransportError; sending again delivers once', async () => {
    const topic = uniqueTopic('sink-exhaust');
    await broker.createTopic(topic, 1);
    const sink = newSink({ retries: 1, initialRetryTime: 50 });
    await sink.send([{ topic, key: 'warm-up', value: 'w', headers: [] }]);
    // librdkafka does not count NOT_LEADER_OR_FOLLOWER (6) against its retries (it looks the leader up and
    // sends again until message.timeout.ms runs out); it counts REQUEST_TIMED_OUT (7).
    const code = client === 'librdkafka' ? KafkaErrorCode.REQUEST_TIMED_OUT : KafkaErrorCode.NOT_LEADER_OR_FOLLOWER;
    await broker.pushRequestErrors(ApiKey.Produce, [code, code, code, code, code, code]);
    const records: OutboundRecord[] = range(0, 10).map((i) => ({ topic, key: `k${i}`, value: `v${i}`, headers: [] }));
    await assert.rejects(sink.send(records), (err: unknown) => {
      assert.ok(err instanceof TransportError);
      assert.equal(err.code, 'TRANSPORT_FAILED');
      assert.equal(err.retryable, true);
      return true;
    });
    await broker.clearRequestErrors(ApiKey.Produce);
    await sink.send(records);

    const got = await readBack([topic], 11);
    assert.deepEqual(got.map((r) => r.value?.toString()), ['w', ...range(0, 10).map((i) => `v${i}`)]);
  });

  test('a broker error no retry can fix, about the connection or the topic, rejects with a non-retryable TransportError', async () => {
    const topic = uniqueTopic('sink-fatal');
    await broker.createTopic(topic, 1);
    const sink = newSink();
    await sink.send([{ topic, key: 'warm-up', value: 'w', headers: [] }]);
    await broker.pushRequestErrors(ApiKey.Produce, [29 /* TOPIC_AUTHORIZATION_FAILED */]);
    await assert.rejects(sink.send([{ topic, key: 'k', value: 'v', headers: [] }]), (err: unknown) => {
      assert.ok(err instanceof TransportError);
      assert.equal(err.retryable, false);
      assert.equal(err.details['kafkaType'], 'TOPIC_AUTHORIZATION_FAILED');
      return true;
    });
  });

  // kafkajs cannot tell which record of a refused request was refused: the sink sends the round again in halves.
  if (client === 'kafkajs') test('a round refused for a record is sent again in halves: the others land, the refused one is reported by position', async () => {
    const topic = uniqueTopic('sink-refused');
    await broker.createTopic(topic, 1);
    const sink = newSink();
    await sink.send([{ topic, key: 'warm-up', value: 'w', headers: [] }]);
    const records = range(0, 4).map((i): OutboundRecord => ({ topic, key: `k${i}`, value: `v${i}`, headers: [] }));
    // The round, its first half and that half's first record are refused: only record 0 stays refused.
    await broker.pushRequestErrors(ApiKey.Produce, [10, 10, 10] /* MESSAGE_TOO_LARGE */);
    const rejected = await sink.send(records);
    assert.deepEqual(rejected.map((r) => [r.index, r.error.code, r.error.details['kafkaError']]), [[0, RecordRejectedError.code, 'MESSAGE_TOO_LARGE']]);
    // Refused once only: every record lands (the halves are sent again, the refusal was transient).
    await broker.pushRequestErrors(ApiKey.Produce, [87 /* INVALID_RECORD */]);
    assert.deepEqual(await sink.send(records), []);
    const got = await readBack([topic], 1 + 3 + 4);
    assert.deepEqual(got.map((r) => r.value?.toString()), ['w', 'v1', 'v2', 'v3', 'v0', 'v1', 'v2', 'v3']);
  });

  // librdkafka reports each record; a broker refuses a record batch whole, so each refused record is tried alone.
  if (client === 'librdkafka') test('a refused record batch: each of its records is tried again alone; only those refused again are reported, and nothing is written twice', async () => {
    const topic = uniqueTopic('sink-refused');
    await broker.createTopic(topic, 1);
    const sink = newSink();
    await sink.send([{ topic, key: 'warm-up', value: 'w', headers: [] }]);
    const records = range(0, 4).map((i): OutboundRecord => ({ topic, key: `k${i}`, value: `v${i}`, headers: [] }));
    // The round's one request (all four records), then k0 alone and k1 alone are refused; k2 and k3 alone land.
    await broker.pushRequestErrors(ApiKey.Produce, [10, 10, 10] /* MESSAGE_TOO_LARGE */);
    const rejected = await sink.send(records);
    assert.deepEqual(rejected.map((r) => [r.index, r.error.code, r.error.details['kafkaError']]), [
      [0, RecordRejectedError.code, 'MESSAGE_TOO_LARGE'], [1, RecordRejectedError.code, 'MESSAGE_TOO_LARGE'],
    ]);
    await broker.pushRequestErrors(ApiKey.Produce, [87 /* INVALID_RECORD */]);
    assert.deepEqual(await sink.send(records), []);
    const got = await readBack([topic], 1 + 2 + 4);
    assert.deepEqual(got.map((r) => r.value?.toString()), ['w', 'v2', 'v3', 'v0', 'v1', 'v2', 'v3']);
  });
});
