/**
 * The shadow topic (`output.shadowTopic`, runtime/shadow-topic.ts): one record per compared event with both
 * decisions side by side, best effort and off the commit path. Through the real pipeline (the sample
 * card-risk pipeline on the real ONNX models, fraud_gbt@3 deciding and fraud_gbt@4 shadowing) over the
 * embedded log, in both placements; the writer's bounds with fake sinks.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { dirname } from 'node:path';
import { describe, test } from 'node:test';
import { compilePipeline } from '../config/compile-pipeline.js';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { silentLogger } from '../core/log.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { startMetricsServer } from '../core/metrics-server.js';
import { ModelRegistry } from '../models/registry.js';
import type { Decision } from '../pipeline/decide/decision-actor.js';
import { NO_HEADERS } from '../pipeline/headers.js';
import type { InboundRecord, OutboundRecord } from '../pipeline/record.js';
import { Engine } from '../runtime/engine.js';
import { ShadowRecordBuffer, ShadowTopicWriter, SHADOW_TOPIC_SEND_MAX, type ShadowTopicValue } from '../runtime/shadow-topic.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import type { RejectedRecord, Sink } from '../streams/types.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';
import { relaxedTimeouts, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';
import { seriesOf as scrape } from './helpers/exposition.js';
import { stateStage } from './helpers/state-reads.js';

const baseDir = dirname(samplePipelinePath);
const SHADOW_TOPIC = 'verdict.shadow';
type Step = PipelineFile['steps'][number];
const editStep = (id: string, edit: (s: Step) => Step) => (f: PipelineFile): PipelineFile => ({ ...f, steps: f.steps.map((s) => (s.id === id ? edit(s) : s)) });

/**
 * The sample pipeline with fraud_gbt@4 shadowing gbt and the shadow topic on. The mlp runs for every event
 * (no `when`), so gbt has no dependents: its shadow decision is exactly the decision the pipeline makes with
 * fraud_gbt@4 deciding, which is how the tests recompute it.
 */
async function shadowPipeline(gbtModel = 'fraud_gbt@3', shadowTopic: string | null = SHADOW_TOPIC): Promise<PipelineFile> {
  const file = await samplePipeline((f) => editStep('mlp', ({ when: _when, ...s }) => s)(
    editStep('gbt', (s) => ({ ...s, model: gbtModel, ...(gbtModel === 'fraud_gbt@3' ? { shadow: 'fraud_gbt@4' } : {}) }))(f)));
  return relaxedTimeouts({ ...file, output: { ...file.output, ...(shadowTopic === null ? {} : { shadowTopic }) } });
}

const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

/** The engine's metrics with its workers', over HTTP as Prometheus would scrape them. */
async function scrapeEngine(engine: Engine): Promise<string> {
  const server = await startMetricsServer({ registry: engine.metrics.registry, remote: () => engine.workerMetrics(), host: '127.0.0.1', port: 0, ready: () => true });
  try {
    return await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  } finally {
    await server.close();
  }
}

function newLog(engine: Engine, partitions = 2): EmbeddedLog {
  const { input, output } = engine.pipeline;
  const log = new EmbeddedLog();
  log.createTopic(input.topic, partitions);
  log.createTopic(output.topic, partitions);
  log.createTopic(output.deadLetter, 1);
  log.createTopic(SHADOW_TOPIC, partitions);
  return log;
}

const readAll = (log: EmbeddedLog, topic: string): InboundRecord[] =>
  log.endOffsets(topic).flatMap((_, p) => log.read(topic, p, 0));

const close = (a: number | null, b: number | null): boolean => (a === null || b === null ? a === b : Math.abs(a - b) < 1e-6);

function closeOutputs(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return close(a, b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => closeOutputs(x, b[i]));
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const [ka, kb] = [Object.keys(a).sort(), Object.keys(b).sort()];
    return ka.join() === kb.join() && ka.every((k) => closeOutputs((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

/** What the pipeline decides for `events` with fraud_gbt@4 deciding gbt, by event id. */
async function recomputed(events: ReadonlyArray<Record<string, unknown>>): Promise<Map<string, Decision>> {
  const file = await shadowPipeline('fraud_gbt@4', null);
  const engine = await Engine.create({ ...file, runtime: { ...file.runtime, workers: 0 } }, { baseDir });
  try {
    const records: InboundRecord[] = events.map((event, i) => ({
      topic: 'transactions', partition: 0, offset: i, key: Buffer.from(String(event['key'])),
      value: Buffer.from(JSON.stringify(event)), headers: NO_HEADERS, timestamp: 0,
    }));
    const out = new Map<string, Decision>();
    const states = stateStage(engine.pipeline);
    for (let i = 0; i < records.length; i += 128) {
      const block = records.slice(i, i + 128);
      for (const o of await engine.processBlock(block, undefined, states(block))) {
        const d = JSON.parse(String(o.output.value)) as Decision;
        out.set(d.eventId, d);
      }
    }
    return out;
  } finally {
    await engine.close();
  }
}

describe('shadow topic: compiling', () => {
  test('a shadow topic compiles into the pipeline; one that is the output or dead-letter topic is refused, naming the field', async () => {
    const registry = new ModelRegistry(`${baseDir}/../../models/registry`);
    const file = await shadowPipeline();
    assert.equal((await compilePipeline(file, registry, { baseDir })).output.shadowTopic, SHADOW_TOPIC);
    assert.equal((await compilePipeline(await shadowPipeline('fraud_gbt@3', null), registry, { baseDir })).output.shadowTopic, null);
    for (const [topic, which] of [[file.output.topic, 'output.topic'], [file.output.deadLetter, 'output.deadLetter'], [file.input.topic, 'input.topic']] as const) {
      await assert.rejects(
        compilePipeline({ ...file, output: { ...file.output, shadowTopic: topic } }, registry, { baseDir }),
        (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID' && err.message.startsWith(`output.shadowTopic: "${topic}" is also ${which};`),
      );
    }
  });

  test('every topic the pipeline writes is its own and none is the input; a shadow topic needs a shadow step', async () => {
    const registry = new ModelRegistry(`${baseDir}/../../models/registry`);
    const file = await shadowPipeline();
    const cases: Array<[PipelineFile, RegExp]> = [
      [{ ...file, output: { ...file.output, topic: file.input.topic } }, /^output\.topic: "transactions" is also input\.topic;/],
      [{ ...file, output: { ...file.output, deadLetter: file.input.topic } }, /^output\.deadLetter: "transactions" is also input\.topic;/],
      [{ ...file, output: { ...file.output, deadLetter: file.output.topic } }, /^output\.deadLetter: ".+" is also output\.topic;/],
      [{ ...(await shadowPipeline('fraud_gbt@4', null)), output: { ...file.output, shadowTopic: SHADOW_TOPIC } }, /^output\.shadowTopic: no step has a shadow/],
    ];
    for (const [edited, pattern] of cases) {
      await assert.rejects(compilePipeline(edited, registry, { baseDir }), (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID' && pattern.test(err.message));
    }
  });
});

describe('shadow topic through the real pipeline', () => {
  const placements = [
    { name: 'on the main thread', runtime: { workers: 0 } },
    { name: 'in block workers', runtime: { workers: 2, mode: 'blocks' as const } },
  ];
  for (const placement of placements) {
    test(`${placement.name}: every compared event appears once, beside the decision made and the one fraud_gbt@4 makes`, async () => {
      const file = await shadowPipeline();
      const events = transactions(1500, 41, 0.3).map((t) => t.event);
      const engine = await Engine.create({ ...file, runtime: { ...file.runtime, ...placement.runtime } }, { baseDir });
      try {
        const log = newLog(engine);
        const { input, output } = engine.pipeline;
        await log.producer().send(events.map((event) => ({ topic: input.topic, key: String(event['key']), value: JSON.stringify(event), headers: [] })));
        const stream = engine.stream(log.consumer({ groupId: 'shadow-topic', topics: [input.topic] }), log.producer());
        await log.waitForRecords(output.topic, events.length);
        // The drain flushes the shadow topic: the block workers' comparisons included.
        assert.deepEqual(await stream.drain(20_000), { drained: true, abandoned: 0 });

        const text = await scrapeEngine(engine);
        const compared = sum(scrape(text, 'verdict_shadow_decisions_total'));
        assert.equal(compared + sum(scrape(text, 'verdict_shadow_dropped_total')), events.length, 'every event compared or its shadow counted as dropped');
        assert.ok(compared > events.length / 2, `${compared} events compared`);

        const shadowRecords = readAll(log, SHADOW_TOPIC);
        assert.equal(shadowRecords.length, compared, 'one shadow-topic record per compared event');
        assert.equal(sum(scrape(text, 'verdict_shadow_topic_sent_total')), compared);
        assert.equal(sum(scrape(text, 'verdict_shadow_topic_dropped_total')), 0);

        const decisions = new Map(readAll(log, output.topic).map((r) => [(JSON.parse(String(r.value)) as Decision).eventId, r]));
        const candidate = await recomputed(events);
        const seen = new Set<string>();
        let disagree = 0;
        for (const r of shadowRecords) {
          const v = JSON.parse(String(r.value)) as ShadowTopicValue;
          assert.ok(!seen.has(v.eventId), `event ${v.eventId} once`);
          seen.add(v.eventId);
          const record = decisions.get(v.eventId);
          assert.ok(record !== undefined, `a decision for ${v.eventId}`);
          const made = JSON.parse(String(record.value)) as Decision;
          assert.deepEqual(r.key, record.key, 'keyed like the decision');
          assert.deepEqual({ pipeline: v.pipeline, key: v.key, step: v.step }, { pipeline: 'card-risk', key: made.key, step: 'gbt' });
          // The primary side is the decision made, as the output topic has it.
          assert.deepEqual(v.primary, { model: made.models['gbt'], action: made.action, score: made.score, reasons: made.reasons, outputs: made.outputs['gbt'] });
          // The shadow side is what the pipeline decides with fraud_gbt@4 deciding.
          const would = candidate.get(v.eventId)!;
          assert.equal(v.shadow.model, 'fraud_gbt@4');
          assert.deepEqual({ action: v.shadow.action, reasons: v.shadow.reasons }, { action: would.action, reasons: would.reasons }, v.eventId);
          assert.ok(close(v.shadow.score, would.score), `${v.eventId}: score ${v.shadow.score} vs ${would.score}`);
          assert.ok(closeOutputs(v.shadow.outputs, would.outputs['gbt']), `${v.eventId}: outputs`);
          assert.equal(v.agree, v.primary.action === v.shadow.action);
          if (!v.agree) disagree++;
        }
        assert.ok(disagree > 0, 'the two versions disagree on some events');
        assert.equal(disagree, sum(new Map([...scrape(text, 'verdict_shadow_decisions_total')].filter(([l]) => l.includes('agree="false"')))));
      } finally {
        await engine.close();
      }
    });
  }

  test('the commit path never waits for the shadow topic: shadow sends that never end, a buffer of 1, and every decision is committed', async () => {
    const file = await shadowPipeline();
    const events = transactions(600, 43, 0.3).map((t) => t.event);
    const engine = await Engine.create({ ...file, runtime: { ...file.runtime, workers: 0 } }, { baseDir, shadowTopicBuffer: 1 });
    try {
      const log = newLog(engine);
      const { input, output } = engine.pipeline;
      await log.producer().send(events.map((event) => ({ topic: input.topic, key: String(event['key']), value: JSON.stringify(event), headers: [] })));
      const producer = log.producer();
      let shadowSends = 0;
      const sink: Sink = {
        send: (records) => {
          if (records.some((r) => r.topic === SHADOW_TOPIC)) {
            shadowSends++;
            return new Promise<readonly RejectedRecord[]>(() => undefined);
          }
          return producer.send(records);
        },
        close: () => producer.close(),
      };
      const stream = engine.stream(log.consumer({ groupId: 'shadow-stuck', topics: [input.topic] }), sink);
      await log.waitForRecords(output.topic, events.length);
      assert.deepEqual(await stream.drain(2_000), { drained: true, abandoned: 0 });
      assert.deepEqual(log.committed('shadow-stuck', input.topic), log.endOffsets(input.topic), 'every offset committed');
      assert.equal(readAll(log, output.topic).length, events.length);

      const text = await scrapeEngine(engine);
      const compared = sum(scrape(text, 'verdict_shadow_decisions_total'));
      assert.ok(compared > 2, `${compared} compared`);
      // One send took the first record and never ended; the buffer held one more; every other was dropped.
      assert.equal(shadowSends, 1, 'at most one send in flight, and no retry');
      assert.deepEqual(scrape(text, 'verdict_shadow_topic_dropped_total'), new Map([
        ['{pipeline="card-risk",reason="overflow"}', compared - 2],
        ['{pipeline="card-risk",reason="shutdown"}', 1],
      ]));
      assert.equal(sum(scrape(text, 'verdict_shadow_topic_sent_total')), 0);
    } finally {
      await engine.close();
    }
  });
});

describe('shadow topic writer', () => {
  const record = (i: number) => ({ key: Buffer.from(`k${i}`), value: `{"i":${i}}` });
  const counters = (metrics: Metrics) => metrics.registry.getSingleMetricAsString('verdict_shadow_topic_dropped_total')
    .then((text) => ({ dropped: scrape(text, 'verdict_shadow_topic_dropped_total') }));

  test('one send in flight at a time, at most SHADOW_TOPIC_SEND_MAX records each, every record sent once; a flush sends the rest', async () => {
    const metrics = createMetrics();
    const sent: OutboundRecord[][] = [];
    let inFlight = 0;
    let most = 0;
    const sink: Sink = {
      send: (records) => {
        sent.push([...records]);
        most = Math.max(most, ++inFlight);
        return new Promise((resolve) => setImmediate(() => { inFlight--; resolve([]); }));
      },
      close: () => Promise.resolve(),
    };
    const buffer = new ShadowRecordBuffer({ pipeline: 'p', metrics });
    const writer = new ShadowTopicWriter({ topic: 's', pipeline: 'p', sink, buffer, clock: new ManualScheduler(), metrics, logger: silentLogger });
    for (let i = 0; i < 2_500; i++) buffer.push(record(i));
    await writer.flush(60_000);
    assert.equal(sent[0]!.length, 1, 'the first record went at once, alone');
    assert.equal(most, 1);
    assert.ok(sent.every((s) => s.length <= SHADOW_TOPIC_SEND_MAX));
    const values = sent.flat().map((r) => String(r.value));
    assert.equal(values.length, 2_500);
    assert.equal(new Set(values).size, 2_500);
    assert.deepEqual(sent.flat()[7], { topic: 's', key: Buffer.from('k7'), value: '{"i":7}', headers: [] });
    assert.equal(Number((await metrics.registry.getSingleMetricAsString('verdict_shadow_topic_sent_total')).match(/ (\d+)$/m)?.[1]), 2_500);
  });

  test('a failed send is counted and dropped, not retried; a full buffer drops and counts', async () => {
    const metrics = createMetrics();
    let sends = 0;
    const sink: Sink = { send: () => { sends++; return Promise.reject(new Error('broker gone')); }, close: () => Promise.resolve() };
    const buffer = new ShadowRecordBuffer({ pipeline: 'p', metrics, bound: 3 });
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _e, done): void { lines.push(chunk.toString('utf8')); done(); } }));
    const writer = new ShadowTopicWriter({ topic: 's', pipeline: 'p', sink, buffer, clock: new ManualScheduler(), metrics, logger });
    // Sync pushes: the first starts a send (taking it), three fit, the last two overflow.
    for (let i = 0; i < 6; i++) buffer.push(record(i));
    await writer.flush(1_000);
    assert.equal(sends, 2, 'the first record alone, then the three buffered; nothing sent twice');
    // The stop says what the topic got, since the counters die with the process.
    const flushed = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'shadow topic flushed');
    assert.deepEqual([flushed?.['topic'], flushed?.['sent'], flushed?.['failed'], flushed?.['droppedAtStop']], ['s', 0, 4, 0]);
    assert.deepEqual((await counters(metrics)).dropped, new Map([
      ['{pipeline="p",reason="overflow"}', 2],
      ['{pipeline="p",reason="failed"}', 4],
    ]));
    assert.equal(writer.open, false);
  });
});
