/**
 * Dead letters and `verdict dlq replay`. First the replay logic against a fake client (watermark bound,
 * re-delivery after a rejoin, code filter, max, dry run, header rewriting), then the real thing: a daemon
 * process dead-letters poison records with their reasons, and the CLI re-injects the schema mismatches,
 * which (still bad) land on the dead-letter topic again, marked as replayed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../core/paths.js';
import { REPLAYED_FROM_HEADER, replayDeadLetters, replayRecord } from '../../streams/dlq-replay.js';
import type {
  AdminLike, ConsumerHandlers, ConsumerLike, ConsumerSettings, KafkaClientFactory, ProducerLike, TopicRecords,
} from '../../streams/kafka/kafka-client.js';
import type { InboundRecord, TopicPartition } from '../../pipeline/record.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { account, describe as describeAccounting } from './helpers/accounting.js';
import { writeDaemonConfig } from './helpers/daemon-process.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { headerBytesOf, headerMap } from '../helpers/headers.js';
import {
  createTopics, endOffsets, produce, readTopic, total, transactionMessages, waitForCommittedToEnd, type InputMessage,
} from './helpers/kafka-io.js';

const execFileAsync = promisify(execFile);
const cli = resolve(packageRoot, 'dist/cli/main.js');

// ---- the replay logic, against a fake client -----------------------------------------------------------

function deadLetter(partition: number, offset: number, code: string | undefined): InboundRecord {
  const headers: Record<string, string> = { 'x-origin': `o-${partition}-${offset}` };
  if (code !== undefined) {
    Object.assign(headers, {
      'verdict-error-code': code, 'verdict-error-message': 'bad', 'verdict-pipeline': 'p',
      'verdict-source-topic': 'in', 'verdict-source-partition': '0', 'verdict-source-offset': '9',
    });
  }
  return { topic: 'dlq', partition, offset, key: Buffer.from(`k-${partition}-${offset}`), value: Buffer.from(`v-${partition}-${offset}`), headers: headerBytesOf(headers), timestamp: 0 };
}

/**
 * A dead-letter topic in memory. The consumer delivers the first records of every partition in batches of 3,
 * then joins again and delivers everything from the start, as a rebalance without commits would.
 * Records appended after the replay read the watermarks stand for the daemon dead-lettering meanwhile.
 */
function fakeKafka(log: Map<number, InboundRecord[]>, lateArrivals: InboundRecord[] = []) {
  const sent: TopicRecords[] = [];
  const paused: TopicPartition[][] = [];
  const settings: ConsumerSettings[] = [];
  let stopped = 0;
  const factory: KafkaClientFactory = {
    admin: (): AdminLike => ({
      clusterId: () => Promise.reject(new Error('not used')),
      topicOffsets: (topic) => {
        assert.equal(topic, 'dlq');
        return Promise.resolve([...log].map(([partition, records]) => ({ partition, low: 0, high: records.length })));
      },
      committedOffsets: () => Promise.reject(new Error('not used')),
      partitionCount: () => Promise.reject(new Error('not used')),
      createTopic: () => Promise.reject(new Error('not used')),
      disconnect: () => Promise.resolve(),
    }),
    consumer: (s): ConsumerLike => {
      settings.push(s);
      return {
        start: (handlers: ConsumerHandlers) => {
          for (const r of lateArrivals) log.get(r.partition)?.push(r);
          const pass = (upTo: number): void => {
            handlers.joined([...log.keys()].map((partition) => ({ topic: 'dlq', partition })));
            for (const [partition, records] of log) {
              const part = records.slice(0, upTo);
              for (let i = 0; i < part.length; i += 3) handlers.batch({ topic: 'dlq', partition, records: part.slice(i, i + 3) });
            }
          };
          // Half of each partition, then a rebalance, then everything from the start again.
          setImmediate(() => { pass(6); handlers.rebalancing(); pass(Infinity); });
          return Promise.resolve();
        },
        pause: (tps) => { paused.push([...tps]); },
        resume: () => undefined,
        commit: () => Promise.reject(new Error('a replay never commits')),
        stop: () => { stopped++; return Promise.resolve(); },
      };
    },
    producer: (): ProducerLike => ({
      connect: () => Promise.resolve(),
      sendBatch: (batch) => { sent.push(...batch); return Promise.resolve([]); },
      disconnect: () => Promise.resolve(),
    }),
    partitionReader: () => { throw new Error('not used'); },
  };
  return { factory, sent, paused, settings, stopped: () => stopped };
}

function dlqLog(): Map<number, InboundRecord[]> {
  const codes = ['INPUT_SCHEMA_MISMATCH', 'INPUT_DECODE_FAILED', 'MODEL_INPUT_INVALID', undefined];
  return new Map([0, 1].map((p) => [p, Array.from({ length: 10 }, (_, o) => deadLetter(p, o, codes[(o + p) % codes.length]))]));
}

describe('dlq replay logic', () => {
  test('replays original key, value and headers once each, with where it came from, up to the starting watermarks', async () => {
    const log = dlqLog();
    const kafka = fakeKafka(log, [deadLetter(0, 10, 'INPUT_SCHEMA_MISMATCH')]);
    const report = await replayDeadLetters(kafka.factory, { from: 'dlq', to: 'in' });
    assert.deepEqual({ read: report.read, matched: report.matched, replayed: report.replayed }, { read: 20, matched: 20, replayed: 20 });
    assert.deepEqual(report.byCode, { INPUT_SCHEMA_MISMATCH: 5, INPUT_DECODE_FAILED: 6, MODEL_INPUT_INVALID: 5, none: 4 });
    assert.deepEqual(report.incomplete, []);
    const records = kafka.sent.flatMap((t) => { assert.equal(t.topic, 'in'); return [...t.records]; });
    // The second pass (a rejoin) replayed nothing again, and the record that arrived after the start was left.
    assert.deepEqual(records.map((r) => headerMap(r.headers)[REPLAYED_FROM_HEADER]).sort(),
      [0, 1].flatMap((p) => Array.from({ length: 10 }, (_, o) => `dlq/${p}/${o}`)).sort());
    const one = records.find((r) => headerMap(r.headers)[REPLAYED_FROM_HEADER] === 'dlq/1/2');
    assert.deepEqual(one, { topic: 'in', key: Buffer.from('k-1-2'), value: Buffer.from('v-1-2'), headers: [{ key: 'x-origin', value: Buffer.from('o-1-2') }, { key: REPLAYED_FROM_HEADER, value: 'dlq/1/2' }] });
    assert.equal(kafka.stopped(), 1);
    assert.match(kafka.settings[0]?.groupId ?? '', /^verdict-dlq-replay-[0-9a-f]{12}$/);
  });

  test('filters by error code, stops at max, and a dry run produces nothing', async () => {
    const filtered = fakeKafka(dlqLog());
    const report = await replayDeadLetters(filtered.factory, { from: 'dlq', to: 'in', codes: ['INPUT_SCHEMA_MISMATCH', 'INPUT_DECODE_FAILED'] });
    assert.deepEqual({ read: report.read, matched: report.matched, replayed: report.replayed }, { read: 20, matched: 11, replayed: 11 });
    const sent = filtered.sent.flatMap((t) => t.records);
    assert.ok(sent.every((r) => r.headers.every((h) => !h.key.startsWith('verdict-') || h.key === REPLAYED_FROM_HEADER)));

    const capped = fakeKafka(dlqLog());
    const cappedReport = await replayDeadLetters(capped.factory, { from: 'dlq', to: 'in', codes: ['INPUT_DECODE_FAILED'], max: 3 });
    assert.equal(cappedReport.matched, 3);
    assert.equal(cappedReport.replayed, 3);
    assert.deepEqual(cappedReport.incomplete, []);

    const dry = fakeKafka(dlqLog());
    const dryReport = await replayDeadLetters(dry.factory, { from: 'dlq', to: 'in', codes: ['MODEL_INPUT_INVALID'], dryRun: true });
    assert.deepEqual({ read: dryReport.read, matched: dryReport.matched, replayed: dryReport.replayed }, { read: 20, matched: 5, replayed: 0 });
    assert.equal(dry.sent.length, 0);
  });

  test('pauses the reader while the produce queue is long', async () => {
    const log = new Map([[0, Array.from({ length: 60 }, (_, o) => deadLetter(0, o, 'INPUT_SCHEMA_MISMATCH'))]]);
    const kafka = fakeKafka(log);
    const report = await replayDeadLetters(kafka.factory, { from: 'dlq', to: 'in', produceBatch: 2 });
    assert.equal(report.replayed, 60);
    assert.ok(kafka.paused.length > 0, 'the reader was paused');
  });

  test('an empty dead-letter topic ends at once, and --from equal to --to is refused', async () => {
    const kafka = fakeKafka(new Map([[0, []]]));
    assert.deepEqual(await replayDeadLetters(kafka.factory, { from: 'dlq', to: 'in' }),
      { read: 0, matched: 0, replayed: 0, byCode: {}, incomplete: [], payloadDropped: [] });
    assert.equal(kafka.settings.length, 0, 'no reader was started');
    await assert.rejects(replayDeadLetters(kafka.factory, { from: 'dlq', to: 'dlq' }), { code: 'CONFIG_INVALID' });
  });

  test('a dead letter written without its payload is not replayed: the report says where its input is', async () => {
    const log = dlqLog();
    const first = log.get(0)!;
    first[3] = {
      ...first[3]!, key: Buffer.from('in/4/77'), value: Buffer.alloc(0),
      headers: headerBytesOf({
        'verdict-error-code': 'PRODUCE_RECORD_REJECTED', 'verdict-source-topic': 'in', 'verdict-source-partition': '4',
        'verdict-source-offset': '77', 'verdict-payload-dropped': 'key,value,headers',
      }),
    };
    const kafka = fakeKafka(log);
    const report = await replayDeadLetters(kafka.factory, { from: 'dlq', to: 'in' });
    assert.deepEqual([report.read, report.matched, report.replayed], [20, 20, 19]);
    assert.deepEqual(report.payloadDropped, [{ topic: 'in', partition: 4, offset: 77 }]);
    const keys = kafka.sent.flatMap((t) => t.records.map((r) => String(r.key)));
    assert.equal(keys.includes('in/4/77'), false, 'no placeholder produced to the input topic');
  });

  test('an input header that looks like one of Verdict\'s is the input\'s: a dead letter carrying it is replayed', async () => {
    const log = dlqLog();
    const first = log.get(0)!;
    first[2] = {
      ...first[2]!,
      headers: [
        ...headerBytesOf({ 'verdict-payload-dropped': 'mine', 'verdict-error-code': 'NOT_OURS' }),
        ...headerBytesOf({ 'verdict-original-headers': '2', 'verdict-error-code': 'INPUT_SCHEMA_MISMATCH', 'verdict-source-offset': '9' }),
      ],
    };
    const kafka = fakeKafka(log);
    const report = await replayDeadLetters(kafka.factory, { from: 'dlq', to: 'in', codes: ['INPUT_SCHEMA_MISMATCH'] });
    assert.deepEqual(report.payloadDropped, []);
    const replayed = kafka.sent.flatMap((t) => t.records).find((r) => String(r.key) === 'k-0-2');
    assert.deepEqual(replayed?.headers, [...headerBytesOf({ 'verdict-payload-dropped': 'mine', 'verdict-error-code': 'NOT_OURS' }), { key: REPLAYED_FROM_HEADER, value: 'dlq/0/2' }]);
  });

  test('a replayed record is the input exactly: the first verdict-original-headers headers, whatever their names', () => {
    const own = [
      { key: REPLAYED_FROM_HEADER, value: Buffer.from('dlq/0/1') }, { key: 'x', value: null }, { key: 'x', value: Buffer.from([0xff]) },
    ];
    const record: InboundRecord = {
      ...deadLetter(2, 7, undefined),
      headers: [...own, { key: 'verdict-original-headers', value: Buffer.from('3') }, ...headerBytesOf({ 'verdict-error-code': 'X', 'verdict-step': 's' })],
    };
    assert.deepEqual(replayRecord(record, 'in').headers, [...own, { key: REPLAYED_FROM_HEADER, value: 'dlq/2/7' }]);
    assert.equal(replayRecord({ ...record, value: null }, 'in').value, null, 'a tombstone stays a tombstone');
  });

  test('a dead letter from before verdict-original-headers loses every verdict-* header, any case, and keeps the rest in order', () => {
    const record: InboundRecord = {
      ...deadLetter(2, 7, undefined),
      headers: headerBytesOf({ a: '1', 'verdict-error-code': 'X', 'Verdict-Step': 's', b: '2' }),
    };
    assert.deepEqual(replayRecord(record, 'in').headers, [...headerBytesOf({ a: '1', b: '2' }), { key: REPLAYED_FROM_HEADER, value: 'dlq/2/7' }]);
  });
});

// ---- poison messages through a daemon, and the CLI --------------------------------------------------------

let h: Harness;

interface ReplayCounts { read: number; matched: number; replayed: number }

async function runReplay(args: readonly string[]): Promise<ReplayCounts> {
  const { stdout } = await execFileAsync(process.execPath, [cli, 'dlq', 'replay', ...args], { timeout: 60_000 });
  const m = /read (\d+), matched (\d+), replayed (\d+)/.exec(stdout);
  assert.ok(m !== null, `replay report: ${stdout}`);
  return { read: Number(m[1]), matched: Number(m[2]), replayed: Number(m[3]) };
}

/** Poison records: undecodable ones, and well-formed events that break the schema. */
function poison(seed: number): { decode: InputMessage[]; schema: InputMessage[] } {
  const decode = ['{"id": "broken', 'not json at all', '[1, 2, 3]', '{}x'].map((value, i) => ({
    key: `poison-decode-${i}`, value, headers: { 'x-origin': `decode-${i}` },
  }));
  const breakers: Array<(e: Record<string, unknown>) => void> = [
    (e) => { e['amount'] = -5; },
    (e) => { e['hour_of_day'] = 31; },
    (e) => { delete e['currency']; },
    (e) => { e['ip_risk'] = 'high'; },
    (e) => { e['device'] = { id: 'd' }; },
    (e) => { e['amount'] = 'ten'; },
  ];
  const schema = transactionMessages(breakers.length, seed).map((m, i) => {
    const event: Record<string, unknown> = { ...m.event, id: `poison-schema-${i}` };
    breakers[i]!(event);
    return { key: `poison-schema-${i}`, value: JSON.stringify(event), headers: { 'x-origin': `schema-${i}`, 'x-trace-id': `t-${i}` } };
  });
  return { decode, schema };
}

describeEachProducer('poison messages and dlq replay through a daemon', { timeout: 120_000 }, (producer) => {
  before(async () => { h = await startHarness('dlq'); });
  after(async () => { await h.close(); });

  test('poison messages land on the dead-letter topic with their reason; replay re-injects exactly the schema mismatches', { timeout: 100_000 }, async (t) => {
    const topics = await createTopics(h.broker, 'dlq', 3);
    const groupId = uniqueTopic('g-dlq');
    const good = transactionMessages(1_000, 21);
    const { decode, schema } = poison(22);
    // Poison spread among good events, so every partition has some.
    const messages: InputMessage[] = [...good];
    [...decode, ...schema].forEach((p, i) => messages.splice(50 + i * 80, 0, p));
    await produce(h.producer, topics.input, messages);

    const daemon = await h.daemon(writeDaemonConfig({ producer, bootstrap: h.broker.bootstrap, groupId, topics }), 'dlq');
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 45_000);

    const inputs = await readTopic(h.broker, topics.input);
    let [decisions, deadLetters] = await Promise.all([readTopic(h.broker, topics.output), readTopic(h.broker, topics.dlq)]);
    let a = account(inputs, decisions, deadLetters);
    assert.equal(a.lost.length + a.duplicates.length + a.strays.length, 0, describeAccounting(a));
    assert.equal(decisions.length, good.length);
    assert.equal(deadLetters.length, decode.length + schema.length);

    const inputByOrigin = new Map(inputs.filter((r) => r.headers['x-origin'] !== undefined).map((r) => [r.headers['x-origin']!, r]));
    for (const d of deadLetters) {
      const origin = d.headers['x-origin'] ?? '';
      const input = inputByOrigin.get(origin);
      assert.ok(input !== undefined, `dead letter of a poison record: ${origin}`);
      assert.equal(d.headers['verdict-error-code'], origin.startsWith('decode') ? 'INPUT_DECODE_FAILED' : 'INPUT_SCHEMA_MISMATCH', origin);
      assert.ok((d.headers['verdict-error-message'] ?? '').length > 0);
      assert.equal(d.headers['verdict-source-topic'], topics.input);
      assert.equal(d.headers['verdict-source-partition'], String(input.partition));
      assert.equal(d.headers['verdict-source-offset'], String(input.offset));
      assert.equal(d.headers['verdict-pipeline'], 'card-risk');
      assert.equal(d.key, input.key, 'original key');
      assert.equal(d.value, input.value, 'original bytes');
      for (const [name, value] of Object.entries(input.headers)) assert.equal(d.headers[name], value, `original header ${name}`);
    }

    // A dry run counts and produces nothing.
    const inputEnd = total(await endOffsets(h.admin, topics.input));
    const brokers = ['--brokers', h.broker.bootstrap.join(','), '--from', topics.dlq, '--to', topics.input];
    assert.deepEqual(await runReplay([...brokers, '--code', 'INPUT_SCHEMA_MISMATCH', '--dry-run']),
      { read: deadLetters.length, matched: schema.length, replayed: 0 });
    assert.equal(total(await endOffsets(h.admin, topics.input)), inputEnd);

    const replay = await runReplay([...brokers, '--code', 'INPUT_SCHEMA_MISMATCH']);
    assert.deepEqual(replay, { read: deadLetters.length, matched: schema.length, replayed: schema.length });
    assert.equal(total(await endOffsets(h.admin, topics.input)), inputEnd + schema.length);

    // The replayed records: original key, value and headers, plus where they came from, and nothing else.
    const dlqByLocation = new Map(deadLetters.map((d) => [`${d.topic}/${d.partition}/${d.offset}`, d]));
    const replayed = (await readTopic(h.broker, topics.input)).filter((r) => r.headers[REPLAYED_FROM_HEADER] !== undefined);
    assert.equal(replayed.length, schema.length);
    for (const r of replayed) {
      const source = dlqByLocation.get(r.headers[REPLAYED_FROM_HEADER]!);
      assert.ok(source !== undefined, `replayed-from names a dead letter: ${r.headers[REPLAYED_FROM_HEADER]}`);
      assert.equal(source.headers['verdict-error-code'], 'INPUT_SCHEMA_MISMATCH');
      const original = inputByOrigin.get(source.headers['x-origin'] ?? '')!;
      assert.equal(r.key, original.key);
      assert.equal(r.value, original.value);
      assert.deepEqual(r.headers, { ...original.headers, [REPLAYED_FROM_HEADER]: `${topics.dlq}/${source.partition}/${source.offset}` });
    }

    // Still bad, so each lands on the dead-letter topic again, carrying its replayed-from header.
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 30_000);
    const allInputs = await readTopic(h.broker, topics.input);
    [decisions, deadLetters] = await Promise.all([readTopic(h.broker, topics.output), readTopic(h.broker, topics.dlq)]);
    a = account(allInputs, decisions, deadLetters);
    assert.equal(a.lost.length + a.duplicates.length + a.strays.length, 0, describeAccounting(a));
    assert.equal(decisions.length, good.length);
    assert.equal(deadLetters.length, decode.length + schema.length * 2);
    const again = deadLetters.filter((d) => d.headers[REPLAYED_FROM_HEADER] !== undefined);
    assert.equal(again.length, schema.length);
    assert.ok(again.every((d) => d.headers['verdict-error-code'] === 'INPUT_SCHEMA_MISMATCH'));
    assert.deepEqual(again.map((d) => d.headers['x-origin']).sort(), schema.map((s) => (s.headers as Record<string, string>)['x-origin']).sort());
    t.diagnostic(`dead letters ${decode.length + schema.length}, replayed ${replay.replayed}, dead-lettered again ${again.length}`);

    assert.equal((await daemon.stop()).code, 0, daemon.describeErrors());
  });
});

