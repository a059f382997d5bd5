/**
 * Records whatever their bytes, through a daemon process over TCP against the mock broker, written and read
 * back with kcat (librdkafka), an independent client: null and binary header values, repeated and
 * interleaved header names, binary keys and tombstones. Every record ends as exactly one decision or one
 * dead letter that is byte for byte the input, and a replay puts that exact input back.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { packageRoot } from '../../core/paths.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { metricSum, writeDaemonConfig } from './helpers/daemon-process.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { createTopics, transactionMessages, waitForCommittedToEnd } from './helpers/kafka-io.js';
import { lastHeader, produceRaw, readRaw, type RawHeader, type RawRecord } from './helpers/kcat-raw.js';

const execFileAsync = promisify(execFile);
const cli = resolve(packageRoot, 'dist/cli/main.js');
const bytes = (...b: number[]): Buffer => Buffer.from(b);

let h: Harness;

/** The input's own headers as a dead letter carries them: its first `verdict-original-headers` headers. */
function originalHeaders(d: RawRecord): readonly RawHeader[] {
  return d.headers.slice(0, Number(lastHeader(d, 'verdict-original-headers')));
}

describeEachProducer('records byte for byte through a daemon', { timeout: 120_000 }, (producer) => {
  before(async () => { h = await startHarness('fidelity', 1); });
  after(async () => { await h.close(); });

  test('null and binary headers, duplicates, binary keys and tombstones: one decision or one exact dead letter each, and an exact replay', { timeout: 100_000 }, async () => {
    const topics = await createTopics(h.broker, 'fidelity', 1);
    const groupId = uniqueTopic('g-fidelity');
    const [a, b, c] = transactionMessages(3, 5).map((m) => Buffer.from(m.value));
    const binHeader = bytes(0xff, 0xfe, 0x80, 0x41);
    const inputs: Array<Omit<RawRecord, 'partition' | 'offset'>> = [
      // 0: a valid transaction.
      { key: Buffer.from('card-a'), value: a!, headers: [] },
      // 1: valid, with a null header value (kcat -H name), a binary key, and a trace id to carry over.
      { key: bytes(0x63, 0xff, 0x80, 0x01), value: b!, headers: [{ key: 'nh', value: null }, { key: 'traceparent', value: Buffer.from('00-abc-01') }] },
      // 2: malformed, with a binary header and a name repeated around another one.
      {
        key: Buffer.from('card-bad'), value: Buffer.from('{"id":"bad-1", not json'),
        headers: [
          { key: 'bin', value: binHeader }, { key: 'dup', value: Buffer.from('first') }, { key: 'x', value: Buffer.alloc(0) },
          { key: 'dup', value: Buffer.from('second') }, { key: 'nul', value: null }, { key: '1', value: Buffer.from('digit name') },
        ],
      },
      // 3: a tombstone.
      { key: Buffer.from('card-tomb'), value: null, headers: [{ key: 'why', value: Buffer.from('deleted') }] },
      // 4: a valid transaction after all that.
      { key: Buffer.from('card-c'), value: c!, headers: [{ key: 'dup', value: Buffer.from('1') }, { key: 'dup', value: Buffer.from('2') }] },
    ];
    for (const r of inputs) await produceRaw(h.broker, topics.input, 0, r);

    const daemon = await h.daemon(writeDaemonConfig({ producer, bootstrap: h.broker.bootstrap, groupId, topics }), 'fidelity');
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 45_000);
    assert.equal((await fetch(`http://127.0.0.1:${daemon.metricsPort}/readyz`)).status, 200);
    const metrics = await daemon.scrapeMetrics();
    assert.equal(metricSum(metrics, 'verdict_kafka_consumer_restarts_total'), 0, 'the consumer never crashed');

    const decisions = await readRaw(h.broker, topics.output);
    // Dead letters of different keys carry no order between them (as decisions do not): they are put in input
    // order by the source offset each one names, and the replay's records matched by key below.
    const sourceOffset = (r: RawRecord): number => Number(lastHeader(r, 'verdict-source-offset'));
    const dead = (await readRaw(h.broker, topics.dlq)).sort((x, y) => sourceOffset(x) - sourceOffset(y));
    // Records of different keys may be produced in any order; each key's decisions keep their order.
    const hex = (k: Buffer | null): string => k?.toString('hex') ?? 'null';
    assert.deepEqual(decisions.map((d) => hex(d.key)).sort(), [0, 1, 4].map((i) => hex(inputs[i]!.key)).sort(), 'each valid record decided once, keyed with its exact key bytes');
    assert.equal(lastHeader(decisions.find((d) => hex(d.key) === hex(inputs[1]!.key))!, 'verdict-trace-id'), '00-abc-01');
    assert.equal(dead.length, 2);

    const [malformed, tombstone] = dead;
    assert.equal(lastHeader(malformed!, 'verdict-error-code'), 'INPUT_DECODE_FAILED');
    assert.deepEqual(malformed!.key, inputs[2]!.key);
    assert.deepEqual(malformed!.value, inputs[2]!.value);
    assert.deepEqual(originalHeaders(malformed!), inputs[2]!.headers, 'every input header, in order, bytes and nulls exact');
    assert.equal(lastHeader(malformed!, 'verdict-source-offset'), '2');
    assert.equal(lastHeader(tombstone!, 'verdict-error-code'), 'INPUT_DECODE_FAILED');
    assert.deepEqual(tombstone!.key, inputs[3]!.key);
    assert.equal(tombstone!.value, null, 'a tombstone stays a tombstone');
    assert.deepEqual(originalHeaders(tombstone!), inputs[3]!.headers);

    // The replay puts the exact inputs back, with where they came from after their own headers.
    const { stdout } = await execFileAsync(process.execPath, [cli, 'dlq', 'replay', '--brokers', h.broker.bootstrap.join(','), '--from', topics.dlq, '--to', topics.input], { timeout: 60_000 });
    assert.match(stdout, /read 2, matched 2, replayed 2/);
    const replayed = (await readRaw(h.broker, topics.input)).slice(inputs.length);
    assert.equal(replayed.length, 2);
    for (const i of [2, 3]) {
      const r = replayed.find((x) => hex(x.key) === hex(inputs[i]!.key));
      assert.ok(r !== undefined, `record ${i} replayed`);
      assert.deepEqual(r.key, inputs[i]!.key);
      assert.deepEqual(r.value, inputs[i]!.value);
      const from = dead.find((d) => hex(d.key) === hex(inputs[i]!.key))!;
      assert.deepEqual(r.headers, [...inputs[i]!.headers, { key: 'verdict-replayed-from', value: Buffer.from(`${topics.dlq}/0/${from.offset}`) }]);
    }
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.describeErrors());
  });
});
