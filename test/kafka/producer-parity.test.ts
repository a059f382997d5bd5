/**
 * What each producer (kafkajs, librdkafka) must keep the same, through `KafkaSink` against the mock
 * cluster, read back with a kafkajs consumer and with kcat (an independent client): where keys land, bytes
 * and headers exactly, which records a refusal costs, retries without loss, and which producer writes the
 * rounds that must land whole (the state changelog's).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { RecordRejectedError, TransportError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { ApiKey, KafkaErrorCode, startMockBroker, uniqueTopic, type MockBroker } from '../../mock-kafka/mock-broker.js';
import type { OutboundRecord, RecordHeader } from '../../pipeline/record.js';
import { KafkaSink, type KafkaSinkOptions } from '../../streams/kafka/kafka-sink.js';
import { partitionForKey } from '../../streams/partitioner.js';
import { PRODUCER_CLIENTS, describeEachProducer, requireLibrdkafka, type TestProducerClient } from '../helpers/producers.js';
import { range } from '../helpers/wait.js';
import { readRaw, type RawRecord } from './helpers/kcat-raw.js';
import { readWritten, type WrittenRecord } from './helpers/written.js';

let broker: MockBroker;
const closers: Array<() => Promise<void>> = [];

before(async () => { broker = await startMockBroker({ brokers: 3 }); });
after(async () => {
  for (const close of closers) await close().catch(() => undefined);
  await broker.stop();
});

function newSink(client: TestProducerClient, options: Partial<KafkaSinkOptions> = {}): KafkaSink {
  const sink = new KafkaSink({ brokers: broker.bootstrap, clientId: `parity-${client}`, logLevel: 'nothing', logger: silentLogger, ...options, producer: { client, ...options.producer } });
  closers.push(() => sink.close());
  return sink;
}

const bytes = (v: Buffer | string | null): Buffer | null => (v === null ? null : typeof v === 'string' ? Buffer.from(v) : v);
const exact = (r: OutboundRecord): { key: Buffer | null; value: Buffer | null; headers: RecordHeader[] } =>
  ({ key: bytes(r.key), value: bytes(r.value), headers: r.headers.map((h) => ({ key: h.key, value: bytes(h.value) })) });
const asRead = (r: WrittenRecord | RawRecord): ReturnType<typeof exact> => ({ key: r.key, value: r.value, headers: [...r.headers] });

/** 5,000 keys: text, binary, long, non-ASCII, one to three bytes, and the empty key. */
function variedKeys(): Buffer[] {
  return range(0, 5_000).map((i) => {
    const digest = createHash('sha256').update(String(i)).digest();
    switch (i % 5) {
      case 0: return i === 0 ? Buffer.alloc(0) : Buffer.from(`card-${i}`);
      case 1: return digest.subarray(0, 1 + (i % 32));
      case 2: return Buffer.from(`${'long-key-'.repeat(20 + (i % 90))}${i}`);
      case 3: return Buffer.from(`ключ-${i}-✓`);
      default: return digest.subarray(0, 1 + (i % 3));
    }
  });
}

test('5,000 keys land on the same partitions with both producers, where Kafka\'s murmur2 (the embedded log\'s) puts them', { timeout: 120_000 }, async () => {
  await requireLibrdkafka();
  const PARTITIONS = 16;
  const keys = variedKeys();
  const topics = new Map<TestProducerClient, string>();
  for (const client of PRODUCER_CLIENTS) {
    const topic = uniqueTopic(`parity-keys-${client}`);
    await broker.createTopic(topic, PARTITIONS);
    topics.set(client, topic);
    const sink = newSink(client);
    assert.deepEqual(await sink.send(keys.map((key, i) => ({ topic, key, value: String(i), headers: [] }))), []);
    await sink.close();
  }
  const read = await readWritten(broker, [...topics.values()], 2 * keys.length, 60_000);
  for (const [client, topic] of topics) {
    const mine = read.filter((r) => r.topic === topic);
    assert.equal(mine.length, keys.length, `${client}: each record once`);
    assert.ok(mine.every((r) => r.writer === client), `${client} wrote them`);
    const wrong = mine.filter((r) => r.partition !== partitionForKey(keys[Number(r.value!.toString())]!, PARTITIONS));
    assert.deepEqual(wrong.map((r) => [r.value?.toString(), r.key?.toString('hex'), r.partition]).slice(0, 5), [], `${client}: every key on murmur2's partition`);
    assert.deepEqual(mine.map((r) => r.key), mine.map((r) => keys[Number(r.value!.toString())]), `${client}: keys exact`);
  }
});

describeEachProducer('one producer against the mock cluster', { timeout: 120_000 }, (client) => {
  test('values, keys and headers arrive byte for byte: empty stays empty, null stays null, repeated names in order', async () => {
    const topic = uniqueTopic('parity-bytes');
    await broker.createTopic(topic, 1);
    const b = (...v: number[]): Buffer => Buffer.from(v);
    const h = (key: string, value: Buffer | string): { key: string; value: Buffer | string } => ({ key, value });
    const records: OutboundRecord[] = [
      { topic, key: 'k', value: '', headers: [] },
      { topic, key: 'k', value: Buffer.alloc(0), headers: [] },
      { topic, key: 'k', value: null, headers: [h('why', 'tombstone')] },
      { topic, key: '', value: 'empty key', headers: [] },
      { topic, key: Buffer.alloc(0), value: 'empty key bytes', headers: [] },
      { topic, key: null, value: 'null key', headers: [] },
      { topic, key: b(0, 1, 0xff, 0x80, 0), value: b(0, 0xff, 0, 0x7f), headers: [] },
      { topic, key: 'h', value: 'binary and empty header values', headers: [h('bin', b(0, 0xff, 0x80, 0)), h('empty', ''), h('empty-bytes', Buffer.alloc(0))] },
      { topic, key: 'h', value: 'names repeated around others', headers: [h('a', '1'), h('b', '2'), h('a', '3'), h('b', ''), h('a', '4')] },
      { topic, key: 'h', value: 'names JavaScript treats specially', headers: [h('__proto__', 'p'), h('constructor', 'c'), h('1', 'one'), h('0', 'zero'), h('ключ', 'юникод'), h('', 'empty name')] },
    ];
    const sink = newSink(client);
    assert.deepEqual(await sink.send(records), []);
    const read = await readWritten(broker, [topic], records.length);
    assert.deepEqual(read.map(asRead), records.map(exact), 'the kafkajs consumer reads them exact, in order');
    assert.ok(read.every((r) => r.writer === client), `${client} wrote every one`);
    assert.deepEqual((await readRaw(broker, topic)).map(asRead), records.map(exact), 'kcat reads them exact, in order');
  });

  test('a record with a null header value keeps its place among its key\'s records, sends in flight around it', async () => {
    const topic = uniqueTopic('parity-null-header');
    await broker.createTopic(topic, 1);
    // kafkajs does not keep one partition's order across overlapping rounds (seen here: two records swapped on
    // a fresh topic), so its rounds go one at a time; librdkafka's rounds overlap, and its producer orders them.
    // A linger of 20 ms keeps librdkafka's records queued a while: a companion round that did not wait for
    // them would overtake them.
    const sink = newSink(client, client === 'librdkafka' ? { maxOutstandingRounds: 4, producer: { lingerMs: 20 } } : { maxOutstandingRounds: 1 });
    const records = range(0, 40).map((i): OutboundRecord => ({
      topic, key: 'one-key', value: String(i),
      headers: i % 4 === 1 ? [{ key: 'n', value: null }, { key: 'x', value: String(i) }, { key: 'n', value: '' }] : [{ key: 'x', value: String(i) }],
    }));
    // Not awaited one by one: rounds overlap, and those with a null header value must wait and hold the rest.
    const results = await Promise.all(records.map((r) => sink.send([r])));
    assert.ok(results.every((r) => r.length === 0));
    const read = await readWritten(broker, [topic], records.length);
    assert.deepEqual(read.map(asRead), records.map(exact), 'in send order, null header values kept');
    // librdkafka cannot write a null header value: a round holding one (sends merged while rounds are out
    // included) goes through its kafkajs companion; the others through librdkafka.
    assert.ok(read.every((r, i) => i % 4 !== 1 || r.writer === 'kafkajs'));
    assert.ok(read.some((r) => r.writer === client), `${client} wrote some`);
    assert.deepEqual((await readRaw(broker, topic)).map(asRead), records.map(exact), 'kcat reads the same');
  });

  test('a round that must land whole goes out as one record batch a partition, through kafkajs; other rounds through the configured producer', async () => {
    const topic = uniqueTopic('parity-whole');
    await broker.createTopic(topic, 3);
    const sink = newSink(client);
    const whole = range(0, 30).map((i): OutboundRecord => ({ topic, key: `k${i}`, value: `whole-${i}`, headers: [], partition: i % 3 }));
    const plain = range(0, 6).map((i): OutboundRecord => ({ topic, key: `p${i}`, value: `plain-${i}`, headers: [], partition: i % 3 }));
    assert.deepEqual(await sink.send(whole, { whole: true }), []);
    assert.deepEqual(await sink.send(plain), []);
    const read = await readWritten(broker, [topic], whole.length + plain.length);
    const wholeRead = read.filter((r) => r.value!.toString().startsWith('whole-'));
    assert.equal(wholeRead.length, whole.length);
    assert.ok(wholeRead.every((r) => r.writer === 'kafkajs'), 'whole rounds are kafkajs\'s');
    for (const p of [0, 1, 2]) {
      assert.deepEqual(new Set(wholeRead.filter((r) => r.partition === p).map((r) => r.batch)).size, 1, `partition ${p}: one record batch`);
    }
    assert.ok(read.filter((r) => r.value!.toString().startsWith('plain-')).every((r) => r.writer === client));
  });

  test('retriable broker errors (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NETWORK_EXCEPTION) lose and duplicate nothing; a send that gives up is retryable', async () => {
    const topic = uniqueTopic('parity-retry');
    await broker.createTopic(topic, 1);
    const sink = newSink(client);
    await sink.send([{ topic, key: 'warm-up', value: 'w', headers: [] }]);
    await broker.pushRequestErrors(ApiKey.Produce, [KafkaErrorCode.NOT_LEADER_OR_FOLLOWER, KafkaErrorCode.REQUEST_TIMED_OUT, KafkaErrorCode.NETWORK_EXCEPTION, KafkaErrorCode.REQUEST_TIMED_OUT]);
    const records = range(0, 50).map((i): OutboundRecord => ({ topic, key: `k${i}`, value: `v${i}`, headers: [] }));
    let failures = 0;
    for (;;) {
      try {
        assert.deepEqual(await sink.send(records), []);
        break;
      } catch (err) {
        // What the pipeline's retry loop does: a retryable failure is sent again (an error response appended nothing).
        assert.ok(err instanceof TransportError && err.retryable, String(err));
        assert.ok(++failures < 5, 'sent again at most 4 times');
      }
    }
    const read = await readWritten(broker, [topic], 51);
    assert.deepEqual(read.map((r) => r.value?.toString()), ['w', ...records.map((r) => r.value)], 'all, once, in order');
  });

  test('a broker that goes down and comes back: sends retried until acknowledged lose nothing', async () => {
    const topic = uniqueTopic('parity-down');
    await broker.createTopic(topic, 1);
    await broker.setLeader(topic, 0, 1);
    const sink = newSink(client, { requestTimeout: 3_000 });
    await sink.send([{ topic, key: 'warm-up', value: 'w', headers: [] }]);
    await broker.setBrokerDown(1);
    const records = range(0, 20).map((i): OutboundRecord => ({ topic, key: `k${i}`, value: `v${i}`, headers: [] }));
    const sent = (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await sink.send(records);
        } catch (err) {
          assert.ok(err instanceof TransportError && err.retryable, String(err));
          assert.ok(attempt < 20, 'acknowledged within 20 attempts');
          await sleep(200);
        }
      }
    })();
    await sleep(2_000);
    await broker.setBrokerUp(1);
    assert.deepEqual(await sent, []);
    const read = await readWritten(broker, [topic], 21);
    const values = read.map((r) => r.value?.toString());
    assert.deepEqual([...new Set(values)].sort(), ['w', ...records.map((r) => r.value as string)].sort(), 'nothing lost');
  });

  test('brokers that cannot be reached: connect rejects with a retryable TransportError, and the process lives on', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const sink = new KafkaSink({ brokers: [`127.0.0.1:${port}`], clientId: 'parity-closed', logLevel: 'nothing', logger: silentLogger, connectionTimeout: 1_000, requestTimeout: 2_000, producer: { client, retries: 0 } });
    closers.push(() => sink.close());
    await assert.rejects(sink.connect(), (err: unknown) => err instanceof TransportError && err.retryable);
    // A throw inside the binding's callback would end this process before the next line (it did: see librdkafka-producer.ts).
    await sleep(500);
    // librdkafka's producer makes a new native client for each connect (kafkajs's retries its own, for ~10 s each).
    if (client === 'librdkafka') await assert.rejects(sink.connect(), (err: unknown) => err instanceof TransportError, 'and again, with a new client');
  });

  if (client === 'librdkafka') {
    test('records refused for themselves are reported by position; the round\'s other records are written exactly once', async () => {
      const topic = uniqueTopic('parity-refused');
      await broker.createTopic(topic, 3);
      for (const p of [0, 1, 2]) await broker.setLeader(topic, p, p + 1);
      const sink = newSink(client);
      await sink.send(range(0, 3).map((p) => ({ topic, key: 'w', value: 'w', headers: [], partition: p })));
      const records: OutboundRecord[] = [
        ...range(0, 10).map((i): OutboundRecord => ({ topic, key: `a${i}`, value: `a${i}`, headers: [], partition: 0 })),
        { topic, key: 'refused', value: 'refused', headers: [], partition: 1 },
        { topic, key: 'too-large', value: Buffer.alloc(2_000_000, 1), headers: [], partition: 2 },
        ...range(0, 10).map((i): OutboundRecord => ({ topic, key: `c${i}`, value: `c${i}`, headers: [], partition: 2 })),
      ];
      // Broker 2 (partition 1) refuses the round's request and the record's request alone. librdkafka does not
      // refuse the 2 MB record itself (its limit is raised to leave it to the broker, as kafkajs has none), and
      // the mock takes any size: it is written.
      await broker.pushBrokerRequestErrors(2, ApiKey.Produce, 2, 10 /* MESSAGE_TOO_LARGE */);
      const rejected = await sink.send(records);
      assert.deepEqual(rejected.map((r) => [r.index, r.error.code, r.error.details['kafkaError']]), [
        [10, RecordRejectedError.code, 'MESSAGE_TOO_LARGE'],
      ]);
      const read = await readWritten(broker, [topic], 3 + 21);
      const large = read.filter((r) => r.value!.length === 2_000_000);
      assert.equal(large.length, 1, 'the 2 MB record is written, once');
      assert.deepEqual(read.filter((r) => r.value!.length < 100).map((r) => r.value!.toString()).sort(),
        ['w', 'w', 'w', ...range(0, 10).flatMap((i) => [`a${i}`, `c${i}`])].sort(), 'the others once each');
    });
  }
});
