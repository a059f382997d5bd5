/**
 * The per-record input limits on Kafka: a daemon process over TCP against the mock broker, records written
 * and read back with kcat. A record past each limit (depth, fields, string, key, size with its headers, in
 * JSON and MessagePack) is one dead letter, byte for byte the input, with the limit's code, counted by code
 * in /metrics; a record within them is decided; the partition's committed offset reaches the end.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pack } from 'msgpackr';
import { NestingTooDeepError, RecordTooLargeError, StringTooLongError, TooManyFieldsError } from '../../core/errors.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { writeDaemonConfig } from './helpers/daemon-process.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { createTopics, transactionMessages, waitForCommittedToEnd } from './helpers/kafka-io.js';
import { lastHeader, produceRaw, readRaw, type RawHeader, type RawRecord } from './helpers/kcat-raw.js';

const LIMITS = { maxRecordBytes: 4096, maxDepth: 4, maxFields: 40, maxStringLength: 256 };

let h: Harness;

describeEachProducer('input limits through a daemon on Kafka', { timeout: 120_000 }, (producer) => {
  before(async () => { h = await startHarness('limits', 1); });
  after(async () => { await h.close(); });

  test('each record past a limit is one exact dead letter with its code; the rest are decided', { timeout: 100_000 }, async () => {
    const topics = await createTopics(h.broker, 'limits', 1);
    const groupId = uniqueTopic('g-limits');
    const [a, b, c, d, e, f] = transactionMessages(6, 13).map((m) => m.event as unknown as Record<string, unknown>);
    const json = (x: unknown): Buffer => Buffer.from(JSON.stringify(x));
    const inputs: Array<Omit<RawRecord, 'partition' | 'offset'> & { code: string | null }> = [
      { key: Buffer.from('card-a'), value: json(a), headers: [], code: null },
      { key: Buffer.from('card-b'), value: json({ ...b, x: { y: { z: { w: {} } } } }), headers: [{ key: 'h', value: Buffer.from('1') }], code: NestingTooDeepError.code },
      { key: Buffer.from('card-c'), value: pack({ ...c, tags: Array.from({ length: 26 }, (_, i) => i) }), headers: [], code: TooManyFieldsError.code },
      { key: Buffer.from('card-d'), value: json({ ...d, note: 'é'.repeat(257) }), headers: [{ key: 'nul', value: null }], code: StringTooLongError.code },
      { key: Buffer.from('card-e'), value: pack({ ...e, ['k'.repeat(257)]: 1 }), headers: [], code: StringTooLongError.code },
      { key: Buffer.from('card-f'), value: json(f), headers: [{ key: 'pad', value: Buffer.alloc(4000, 0x2e) }], code: RecordTooLargeError.code },
    ];
    for (const r of inputs) await produceRaw(h.broker, topics.input, 0, r);

    const daemon = await h.daemon(writeDaemonConfig({
      producer,
      bootstrap: h.broker.bootstrap, groupId, topics,
      editPipeline: (p) => { (p['input'] as Record<string, unknown>)['limits'] = LIMITS; },
    }), 'limits');
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 45_000);
    const metrics = await daemon.scrapeMetrics();

    const decisions = await readRaw(h.broker, topics.output);
    assert.deepEqual(decisions.map((r) => r.key?.toString()), ['card-a']);
    const sourceOffset = (r: RawRecord): number => Number(lastHeader(r, 'verdict-source-offset'));
    const dead = (await readRaw(h.broker, topics.dlq)).sort((x, y) => sourceOffset(x) - sourceOffset(y));
    assert.equal(dead.length, inputs.length - 1);
    dead.forEach((letter, i) => {
      const input = inputs[i + 1]!;
      assert.equal(sourceOffset(letter), i + 1);
      assert.equal(lastHeader(letter, 'verdict-error-code'), input.code, input.key?.toString());
      assert.deepEqual(letter.key, input.key);
      assert.deepEqual(letter.value, input.value, 'the value byte for byte');
      const original: readonly RawHeader[] = letter.headers.slice(0, Number(lastHeader(letter, 'verdict-original-headers')));
      assert.deepEqual(original, input.headers, 'the input headers, in order, exact');
    });
    for (const code of [NestingTooDeepError.code, TooManyFieldsError.code, StringTooLongError.code, RecordTooLargeError.code]) {
      const want = inputs.filter((r) => r.code === code).length;
      assert.match(metrics, new RegExp(`verdict_dead_letters_total\\{pipeline="card-risk",code="${code}"\\} ${want}\\b`), code);
    }
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.describeErrors());
  });
});
