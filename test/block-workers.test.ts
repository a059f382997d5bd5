/**
 * Block workers: the same records give the same decisions and dead letters whether blocks run in a worker
 * thread (runtime.mode: blocks) or on the main thread; a worker that cannot build its engine turns its
 * blocks into dead letters with the typed error instead of stalling the stream; workers build their engine
 * from the compiled pipeline and never read the pipeline file.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadPipelineFile } from '../config/load.js';
import { ModelNotFoundError } from '../core/errors.js';
import { createMetrics } from '../core/metrics.js';
import { BlockPool } from '../runtime/block-pool.js';
import { Engine } from '../runtime/engine.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import { HEADER } from '../pipeline/encode-outcome.js';
import type { InboundRecord, OutboundRecord } from '../pipeline/record.js';
import { compiled, relaxedTimeouts, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';
import { seriesOf } from './helpers/exposition.js';
import { headerMap, headersOf } from './helpers/headers.js';
import { stateStage } from './helpers/state-reads.js';

const baseDir = dirname(samplePipelinePath);

async function engineIn(mode: 'blocks' | 'inference', workers: number): Promise<Engine> {
  const file = relaxedTimeouts(await samplePipeline());
  return Engine.create({ ...file, runtime: { ...file.runtime, mode, workers } }, { baseDir });
}

/** Streams `records` through the engine on a fresh embedded log; returns the outputs by topic. */
async function run(engine: Engine, records: readonly OutboundRecord[], good: number): Promise<{ decisions: InboundRecord[]; dead: InboundRecord[] }> {
  const { input, output } = engine.pipeline;
  const log = new EmbeddedLog();
  log.createTopic(input.topic, 3);
  log.createTopic(output.topic, 3);
  log.createTopic(output.deadLetter, 1);
  await log.producer().send(records);
  await engine.prepareStream();
  const stream = engine.stream(log.consumer({ groupId: 'g', topics: [input.topic] }), log.producer());
  await log.waitForRecords(output.topic, good);
  await log.waitForRecords(output.deadLetter, records.length - good);
  assert.deepEqual(await stream.drain(10_000), { drained: true, abandoned: 0 });
  return { decisions: [0, 1, 2].flatMap((p) => log.read(output.topic, p, 0)), dead: log.read(output.deadLetter, 0, 0) };
}

/** What must not depend on where a block ran: everything but the measured latencies. */
function essence(r: InboundRecord): unknown {
  const body = JSON.parse(r.value?.toString() ?? '{}') as Record<string, unknown>;
  delete body['latencyMs'];
  return { key: r.key?.toString(), id: headerMap(r.headers)[HEADER.eventId], models: headerMap(r.headers)[HEADER.models], body };
}

describe('block workers', () => {
  const engines: Engine[] = [];
  after(async () => {
    await Promise.all(engines.map((e) => e.close()));
  });

  test('a worker thread and the main thread decide the same records identically', async () => {
    const events = transactions(600, 31, 0.1);
    const topic = 'transactions';
    const records: OutboundRecord[] = [
      ...events.map(({ event }) => ({ topic, key: String(event['key']), value: JSON.stringify(event), headers: headersOf({ 'x-trace-id': `t-${String(event['id'])}` }) })),
      { topic, key: 'bad-1', value: '{"id": ', headers: [] },
      { topic, key: 'bad-2', value: JSON.stringify({ id: 'bad-2', amount: -5 }), headers: [] },
    ];
    const inWorker = await engineIn('blocks', 1);
    const onMain = await engineIn('inference', 0);
    engines.push(inWorker, onMain);
    const a = await run(inWorker, records, events.length);
    const b = await run(onMain, records, events.length);
    const byId = (rs: InboundRecord[]) => new Map(rs.map((r) => [headerMap(r.headers)[HEADER.eventId], essence(r)]));
    const fromWorker = byId(a.decisions);
    assert.equal(fromWorker.size, events.length, 'one decision per good event');
    assert.deepEqual(fromWorker, byId(b.decisions));
    // Keys survive the trip as bytes, and headers as they were.
    const one = a.decisions.find((r) => headerMap(r.headers)[HEADER.eventId] === events[0]?.event['id']);
    assert.equal(one?.key?.toString(), String(events[0]?.event['key']));
    assert.equal(headerMap(one?.headers)[HEADER.traceId], `t-${String(events[0]?.event['id'])}`);
    const dead = (rs: InboundRecord[]) => rs.map((r) => [r.key?.toString(), r.value?.toString(), headerMap(r.headers)[HEADER.errorCode]]).sort();
    assert.deepEqual(dead(a.dead), dead(b.dead));
    assert.deepEqual(dead(a.dead).map((d) => d[2]), ['INPUT_DECODE_FAILED', 'INPUT_SCHEMA_MISMATCH']);
  });

  test('the engine collects worker metrics from whichever workers its placement started', async () => {
    const pooled = await engineIn('inference', 1);
    engines.push(pooled);
    const fromInference = (await pooled.workerMetrics()) as Array<Array<{ name: string }>>;
    assert.equal(fromInference.length, 1, 'the inference worker answers');
    assert.ok(fromInference[0]?.some((m) => m.name === 'verdict_decisions_total'));
    const blocks = await engineIn('blocks', 1);
    engines.push(blocks);
    assert.deepEqual(await blocks.workerMetrics(), [], 'block workers start with the stream');
    await blocks.prepareStream();
    assert.equal((await blocks.workerMetrics()).length, 1, 'the block worker answers');
  });

  test('a worker that cannot build its engine dead-letters its blocks with the typed error', async () => {
    const pipeline = await compiled(await samplePipeline((f) => ({ ...f, runtime: { ...f.runtime, mode: 'blocks', workers: 1 } })), baseDir);
    // Compiled elsewhere, loaded here: the model file is gone by the time the worker opens it.
    const broken = { ...pipeline, steps: pipeline.steps.map((s) => ({ ...s, model: { ...s.model, path: '/nonexistent/model.onnx' } })) };
    const pool = new BlockPool({ pipeline: broken });
    try {
      // The typed error survives the thread boundary: code and message, not a bare Error.
      await assert.rejects(pool.ready(), (err: Error & { code?: string }) => err.code === ModelNotFoundError.code && /nonexistent/.test(err.message));
      const record: InboundRecord = { topic: 'transactions', partition: 0, offset: 7, key: Buffer.from('k'), value: Buffer.from('{"id":"x"}'), headers: [], timestamp: 0 };
      const [encoded] = await pool.process([record]);
      assert.equal(encoded?.kind, 'dead-letter');
      assert.equal(encoded?.label, ModelNotFoundError.code);
      assert.equal(encoded?.output.topic, pipeline.output.deadLetter);
      assert.equal(encoded?.output.value?.toString(), '{"id":"x"}', 'the original bytes');
      assert.equal(headerMap(encoded?.output.headers)[HEADER.sourceOffset], '7');
    } finally {
      await pool.close();
    }
  });

  test('workers build their engine from the compiled pipeline, not the pipeline file, and report metrics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-block-workers-'));
    const path = join(dir, 'card-risk.yaml');
    copyFileSync(samplePipelinePath, path);
    const file = relaxedTimeouts(await loadPipelineFile(path));
    const pipeline = await compiled({ ...file, runtime: { ...file.runtime, mode: 'blocks', workers: 1 } }, baseDir);
    // What the workers receive is plain data that names no pipeline file.
    assert.deepEqual(structuredClone(pipeline), pipeline);
    assert.ok(!JSON.stringify(pipeline).includes(dir), 'no path of the pipeline file');
    rmSync(dir, { recursive: true, force: true });
    // Nor does a worker go back to the registry: model paths and hashes are already resolved.
    const metrics = createMetrics();
    const pool = new BlockPool({ pipeline: { ...pipeline, registryRoot: '/nonexistent/registry' }, metrics });
    try {
      await pool.ready();
      const events = transactions(20, 5, 0);
      const records = events.map(({ event }, offset): InboundRecord => ({
        topic: 'transactions', partition: 0, offset, timestamp: 0, key: Buffer.from(String(event['key'])), value: Buffer.from(JSON.stringify(event)), headers: [],
      }));
      // The state each event saw, as the stream's state stage hands it over (the sample pipeline keeps per-card state).
      const encoded = await pool.process(records, undefined, stateStage(pipeline)(records));
      assert.deepEqual(encoded.map((d) => d.kind), records.map(() => 'decision'));
      // The metrics channel: the worker answers with its own registry, which counted each event's steps.
      const workers = (await pool.collectMetrics()) as Array<Array<{ name: string; values: Array<{ value: number; labels: Record<string, string> }> }>>;
      assert.equal(workers.length, 1);
      const sum = (name: string, match: (labels: Record<string, string>) => boolean = () => true): number =>
        workers.flat().filter((m) => m.name === name).flatMap((m) => m.values).filter((v) => match(v.labels)).reduce((n, v) => n + v.value, 0);
      assert.equal(sum('verdict_step_outcomes_total', (l) => l['step'] === 'gbt'), events.length);
      // What became of each record is counted by the pool on this thread (POOL_COUNTED_METRICS), not exported
      // by the worker, whose registry would die with its thread.
      assert.equal(sum('verdict_decisions_total'), 0);
      const text = await metrics.registry.metrics();
      assert.equal([...seriesOf(text, 'verdict_decisions_total').values()].reduce((a, b) => a + b, 0), events.length);
      assert.equal([...seriesOf(text, 'verdict_events_in_total').values()].reduce((a, b) => a + b, 0), events.length);
    } finally {
      await pool.close();
    }
  });
});
