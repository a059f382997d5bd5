/**
 * The Kafka changelog store over the mock broker (a real Kafka protocol peer): the topic check against the
 * input's partitions, and a restore's read of some partitions from their start to their end as of the call,
 * binary keys and tombstones included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { KafkaChangelog } from '../../streams/kafka/kafka-changelog.js';
import { kafkajsClientFactory } from '../../streams/kafka/kafkajs-client.js';
import { startHarness, type Harness } from './helpers/harness.js';

describe('Kafka changelog store', () => {
  let h: Harness;
  before(async () => { h = await startHarness('changelog-store', 1); });
  after(async () => { await h.close(); });

  const store = () => new KafkaChangelog(kafkajsClientFactory({ brokers: [...h.broker.bootstrap], clientId: 'changelog-test', logLevel: 'nothing' }, silentLogger));

  test('prepare accepts a changelog with the input\'s partition count and refuses another', async () => {
    const input = uniqueTopic('cl-in');
    const good = uniqueTopic('cl-good');
    const bad = uniqueTopic('cl-bad');
    await h.broker.createTopic(input, 3);
    await h.broker.createTopic(good, 3);
    await h.broker.createTopic(bad, 2);
    const s = store();
    try {
      await s.prepare(good, input);
      await assert.rejects(s.prepare(bad, input), (err: unknown) => err instanceof ConfigError && /has 2 partitions, the input topic .* 3/.test(err.message));
      await assert.rejects(s.prepare(good, uniqueTopic('cl-missing')), (err: unknown) => err instanceof ConfigError && /does not exist/.test(err.message));
    } finally {
      await s.close();
    }
  });

  test('read gives the asked partitions from their start to their end, in order, with binary keys and tombstones', async () => {
    const topic = uniqueTopic('cl-read');
    await h.broker.createTopic(topic, 3);
    const binary = Buffer.from([0, 255, 1, 254]);
    await h.producer.send({
      topic,
      messages: [
        { partition: 0, key: 'a', value: '1' },
        { partition: 0, key: binary, value: Buffer.from([9]) },
        { partition: 0, key: 'a', value: null },
        { partition: 1, key: 'other', value: 'x' },
        { partition: 2, key: 'c', value: '3' },
      ],
    });
    const s = store();
    try {
      const seen: Array<[number, string, string | null]> = [];
      await s.read(topic, [0, 2], (p, key, value) => seen.push([p, key?.toString('hex') ?? 'null', value?.toString('hex') ?? null]), new AbortController().signal);
      assert.deepEqual(seen.filter(([p]) => p === 0), [
        [0, Buffer.from('a').toString('hex'), Buffer.from('1').toString('hex')],
        [0, binary.toString('hex'), '09'],
        [0, Buffer.from('a').toString('hex'), null],
      ]);
      assert.deepEqual(seen.filter(([p]) => p === 2), [[2, Buffer.from('c').toString('hex'), Buffer.from('3').toString('hex')]]);
      assert.equal(seen.filter(([p]) => p === 1).length, 0, 'partition 1 was not asked for');
      // Read again (the reader is kept: a seek, not a new group), after more was appended: from the start to the new end.
      await h.producer.send({ topic, messages: [{ partition: 2, key: 'd', value: '4' }] });
      const again: string[] = [];
      await s.read(topic, [2], (_p, key) => again.push(key?.toString() ?? 'null'), new AbortController().signal);
      assert.deepEqual(again, ['c', 'd']);
      // An empty set of partitions, or only empty partitions, needs no read.
      const none: unknown[] = [];
      const empty = uniqueTopic('cl-empty');
      await h.broker.createTopic(empty, 2);
      await s.read(empty, [0, 1], (...args) => none.push(args), new AbortController().signal);
      assert.equal(none.length, 0);
    } finally {
      await s.close();
    }
  });

  test('an aborted read rejects with STATE_RESTORE_FAILED', async () => {
    const topic = uniqueTopic('cl-abort');
    await h.broker.createTopic(topic, 1);
    await h.producer.send({ topic, messages: [{ partition: 0, key: 'k', value: 'v' }] });
    const s = store();
    const controller = new AbortController();
    controller.abort();
    try {
      await assert.rejects(s.read(topic, [0], () => undefined, controller.signal), (err: unknown) => (err as { code?: string }).code === 'STATE_RESTORE_FAILED');
    } finally {
      await s.close();
    }
  });
});
