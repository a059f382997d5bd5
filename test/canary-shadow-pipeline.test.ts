/**
 * Canary and shadow through the real pipeline: the sample card-risk pipeline on the real ONNX models of
 * models/registry, fraud_gbt@3 deciding and fraud_gbt@4 (another version, same signature) as the candidate.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { compilePipeline } from '../config/compile-pipeline.js';
import { parsePipeline } from '../config/load.js';
import type { PipelineFile } from '../config/pipeline-schema.js';
import { startMetricsServer } from '../core/metrics-server.js';
import { ModelRegistry } from '../models/registry.js';
import type { Decision } from '../pipeline/decide/decision-actor.js';
import { NO_HEADERS } from '../pipeline/headers.js';
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord } from '../pipeline/record.js';
import { compiledBindings } from '../pipeline/route/bindings.js';
import { inCanary } from '../pipeline/route/key-split.js';
import { Engine } from '../runtime/engine.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';
import { relaxedTimeouts, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';
import { seriesOf as scrape } from './helpers/exposition.js';
import { stateStage } from './helpers/state-reads.js';

const baseDir = dirname(samplePipelinePath);
const registry = new ModelRegistry(`${baseDir}/../../models/registry`);
type Step = PipelineFile['steps'][number];

const editStep = (id: string, edit: (s: Step) => Step) => (f: PipelineFile): PipelineFile => ({ ...f, steps: f.steps.map((s) => (s.id === id ? edit(s) : s)) });

function recordsOf(events: ReadonlyArray<Record<string, unknown>>, from: number): InboundRecord[] {
  return events.map((event, i) => ({
    topic: 'transactions', partition: 0, offset: from + i, key: Buffer.from(String(event['key'])),
    value: Buffer.from(JSON.stringify(event)), headers: NO_HEADERS, timestamp: 0,
  }));
}

const decisionOf = (o: EncodedOutcome): Decision => JSON.parse(String(o.output.value)) as Decision;


describe('canary and shadow: compiling', () => {
  test('a step\'s canary and shadow are resolved and kept with the ids as configured, and fill the compiled bindings', async () => {
    const file = await samplePipeline(editStep('gbt', (s) => ({ ...s, canary: { model: 'fraud_gbt@canary', percent: 10 }, shadow: 'fraud_gbt@4' })));
    const p = await compilePipeline(file, registry, { baseDir });
    const gbt = p.steps.find((s) => s.id === 'gbt')!;
    assert.deepEqual({ id: gbt.canary?.modelId, ref: gbt.canary?.model.ref, percent: gbt.canary?.percent }, { id: 'fraud_gbt@canary', ref: 'fraud_gbt@4', percent: 10 });
    assert.deepEqual({ id: gbt.shadow?.modelId, ref: gbt.shadow?.model.ref }, { id: 'fraud_gbt@4', ref: 'fraud_gbt@4' });
    assert.equal(p.steps.find((s) => s.id === 'mlp')?.canary, null);
    const binding = compiledBindings(p).steps[gbt.index]!;
    assert.deepEqual({ primary: binding.primary.ref, canary: binding.canary?.model.ref, percent: binding.canary?.percent, shadow: binding.shadow?.ref },
      { primary: 'fraud_gbt@3', canary: 'fraud_gbt@4', percent: 10, shadow: 'fraud_gbt@4' });
  });

  test('an unknown or incompatible candidate is refused, naming its config path', async () => {
    const rejects = async (edit: (f: PipelineFile) => PipelineFile, pattern: RegExp) => assert.rejects(
      compilePipeline(await samplePipeline(edit), registry, { baseDir }),
      (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID' && pattern.test(err.message),
    );
    await rejects(editStep('gbt', (s) => ({ ...s, canary: { model: 'fraud_gbt@nope', percent: 5 } })), /^steps\[0\]\.canary\.model: MODEL_NOT_FOUND: /);
    await rejects(editStep('gbt', (s) => ({ ...s, shadow: 'ghost@1' })), /^steps\[0\]\.shadow: MODEL_NOT_FOUND: /);
    // The autoencoder gives `score`, not the fraud_probability the rules read from gbt.
    await rejects(editStep('gbt', (s) => ({ ...s, canary: { model: 'txn_autoencoder@2', percent: 5 } })), /^steps\[0\]\.canary\.model: txn_autoencoder@2 has no output "fraud_probability"/);
    await rejects(editStep('anomaly', (s) => ({ ...s, shadow: 'fraud_gbt@3' })), /^steps\[1\]\.shadow: fraud_gbt@3 has no output "score", which step "anomaly" was compiled with txn_autoencoder@2/);
    // The shadow topic must be a topic of its own (test/shadow-topic.test.ts covers it).
    await rejects((f) => ({ ...f, output: { ...f.output, shadowTopic: f.output.topic } }), /^output\.shadowTopic: ".*" is also output\.topic/);
  });

  test('a canary percent outside (0, 100] is refused by the schema', () => {
    const yaml = (percent: number) => `pipeline: x\nschemas: { s: { fields: { id: { type: string } } } }\ninput: { schema: s, features: {} }\n`
      + `steps: [ { id: a, model: m, inputs: {}, canary: { model: m@2, percent: ${percent} } } ]\ndecision: {}\n`;
    assert.throws(() => parsePipeline(yaml(0), 'x.yaml'), /steps.*canary.*percent.*above 0/s);
    assert.throws(() => parsePipeline(yaml(101), 'x.yaml'), /steps.*canary.*percent.*at most 100/s);
    assert.doesNotThrow(() => parsePipeline(yaml(100), 'x.yaml'));
  });
});

describe('canary through the real pipeline', () => {
  test('every key is decided by one version in every block, the one its hash says, on this thread and in a block worker', async () => {
    const file = relaxedTimeouts(await samplePipeline(editStep('gbt', (s) => ({ ...s, canary: { model: 'fraud_gbt@canary', percent: 20 } }))));
    const keys = Array.from({ length: 400 }, (_, k) => `card-${k}`);
    const pool = transactions(keys.length * 6, 17, 0.1).map((t) => t.event);
    // Each key six times, spread over the stream so that it lands in different blocks with different neighbours.
    const events = pool.map((event, i) => ({ ...event, id: `e${i}`, key: keys[(i * 7) % keys.length]! }));
    const expected = (key: string) => (inCanary(key, 20) ? 'fraud_gbt@4' : 'fraud_gbt@3');

    const check = (decisions: readonly Decision[]) => {
      assert.equal(decisions.length, events.length);
      const seen = new Map<string, Set<string>>();
      for (const d of decisions) {
        if (!seen.has(d.key)) seen.set(d.key, new Set());
        seen.get(d.key)!.add(d.models['gbt']!);
      }
      assert.equal(seen.size, keys.length);
      for (const [key, versions] of seen) assert.deepEqual([...versions], [expected(key)], key);
      const inside = keys.filter((k) => expected(k) === 'fraud_gbt@4').length;
      // Binomial(400, 0.2): sd = 8; within 5 sd of 80.
      assert.ok(Math.abs(inside - 80) <= 40, `${inside} of 400 keys in the canary`);
    };

    // On this thread, block by block.
    const engine = await Engine.create({ ...file, runtime: { ...file.runtime, workers: 0 } }, { baseDir });
    try {
      const decisions: Decision[] = [];
      const states = stateStage(engine.pipeline);
      for (let i = 0; i < events.length; i += 128) {
        const records = recordsOf(events.slice(i, i + 128), i);
        decisions.push(...(await engine.processBlock(records, undefined, states(records))).map(decisionOf));
      }
      check(decisions);
      // The canary's outputs are its own model's: the two versions disagree on some probabilities.
      const byVersion = new Map(decisions.map((d) => [d.models['gbt'], d.outputs['gbt']?.['fraud_probability']]));
      assert.equal(byVersion.size, 2);
    } finally {
      await engine.close();
    }

    // In the default placement: the stream's blocks in a block worker, over the embedded log.
    const workers = await Engine.create({ ...file, runtime: { ...file.runtime, workers: 1, mode: 'blocks' } }, { baseDir });
    try {
      const { input, output } = workers.pipeline;
      const log = new EmbeddedLog();
      log.createTopic(input.topic, 3);
      log.createTopic(output.topic, 3);
      log.createTopic(output.deadLetter, 1);
      await log.producer().send(events.map((event) => ({ topic: input.topic, key: String(event['key']), value: JSON.stringify(event), headers: [] })));
      const stream = workers.stream(log.consumer({ groupId: 'canary', topics: [input.topic] }), log.producer());
      await log.waitForRecords(output.topic, events.length);
      assert.deepEqual(await stream.drain(10_000), { drained: true, abandoned: 0 });
      check([0, 1, 2].flatMap((p) => log.read(output.topic, p, 0)).map((r) => JSON.parse(String(r.value)) as Decision));
    } finally {
      await workers.close();
    }
  });
});

describe('shadow through the real pipeline', () => {
  /**
   * Time stands still: a ManualScheduler nobody advances, and batches dispatched without a delay
   * (maxDelayMs 0), so no timer is ever needed. Every step answers (real models, nothing times out), every
   * latency in a decision is 0, and a decision's bytes depend only on its input and the models. The mlp
   * runs for every event (no `when`), so gbt has no dependents: its shadow decision is then exactly the
   * decision the pipeline makes with fraud_gbt@4 deciding, which is how the test recomputes it.
   */
  const frozen = (edit: (f: PipelineFile) => PipelineFile) => async () => {
    const file = edit(await samplePipeline(editStep('mlp', ({ when: _when, ...s }) => s)));
    return Engine.create({
      ...file,
      runtime: { ...file.runtime, workers: 0 },
      models: { ...file.models, batching: { ...file.models.batching, maxDelayMs: 0 } },
    }, { baseDir, scheduler: new ManualScheduler() });
  };
  const run = async (engine: Engine, events: ReadonlyArray<Record<string, unknown>>) => {
    const out: EncodedOutcome[] = [];
    const states = stateStage(engine.pipeline);
    const block = (records: InboundRecord[]) => engine.processBlock(records, undefined, states(records));
    // Four blocks at a time, so that blocks share batches as they would in a stream.
    for (let i = 0; i < events.length; i += 512) {
      const blocks = [0, 128, 256, 384].filter((o) => i + o < events.length).map((o) => block(recordsOf(events.slice(i + o, i + o + 128), i + o)));
      for (const b of await Promise.all(blocks)) out.push(...b);
    }
    return out;
  };

  test('decisions are byte-identical with and without the shadow, and the agreement counters match a recomputation', async () => {
    const events = transactions(2000, 29, 0.3).map((t) => t.event);
    const plain = await frozen((f) => f)();
    const shadowed = await frozen(editStep('gbt', (s) => ({ ...s, shadow: 'fraud_gbt@4' })))();
    const candidate = await frozen(editStep('gbt', (s) => ({ ...s, model: 'fraud_gbt@4' })))();
    try {
      const [without, withShadow, asPrimary] = [await run(plain, events), await run(shadowed, events), await run(candidate, events)];
      await shadowed.shadowsSettled();

      // Byte for byte: value, key, headers and topic of every output record.
      assert.equal(withShadow.length, events.length);
      for (let i = 0; i < events.length; i++) {
        const [a, b] = [without[i]!.output, withShadow[i]!.output];
        assert.ok(Buffer.from(a.value as Buffer).equals(Buffer.from(b.value as Buffer)), `event ${i}: ${String(a.value)} vs ${String(b.value)}`);
        assert.deepEqual({ ...b, value: null }, { ...a, value: null });
      }
      assert.match(String(withShadow[0]!.output.value), /"latencyMs":\{"ingest":0,"models":0,"decision":0,"total":0\}/);

      // The recomputation: per event, (action made, action with fraud_gbt@4 deciding).
      const expected = new Map<string, number>();
      let scoreSum = 0;
      for (let i = 0; i < events.length; i++) {
        const [made, would] = [decisionOf(without[i]!), decisionOf(asPrimary[i]!)];
        assert.equal(would.models['gbt'], 'fraud_gbt@4');
        const label = `{pipeline="card-risk",step="gbt",primary_action="${made.action}",shadow_action="${would.action}",agree="${made.action === would.action}"}`;
        expected.set(label, (expected.get(label) ?? 0) + 1);
        scoreSum += would.score! - made.score!;
      }
      assert.ok([...expected.keys()].some((l) => l.includes('agree="false"')), 'the two versions disagree on some events');

      // Scraped over HTTP, as Prometheus would.
      const server = await startMetricsServer({ registry: shadowed.metrics.registry, host: '127.0.0.1', port: 0, ready: () => true });
      let text: string;
      try {
        text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      } finally {
        await server.close();
      }
      assert.deepEqual(scrape(text, 'verdict_shadow_decisions_total'), expected);
      const scores = scrape(text, 'verdict_shadow_score_difference_count');
      assert.deepEqual(scores, new Map([['{pipeline="card-risk",step="gbt"}', events.length]]));
      const sum = (scrape(text, 'verdict_shadow_score_difference_sum')).get('{pipeline="card-risk",step="gbt"}')!;
      assert.ok(Math.abs(sum - scoreSum) < 1e-9, `score difference sum ${sum} vs ${scoreSum}`);
      // Frozen time: both calls take 0 ms.
      assert.equal((scrape(text, 'verdict_shadow_latency_difference_seconds_count')).get('{pipeline="card-risk",step="gbt"}'), events.length);
      assert.equal((scrape(text, 'verdict_shadow_dropped_total')).size, 0);
      // The shadow's decisions are not decisions: the decision counters equal the plain engine's.
      assert.deepEqual(scrape(text, 'verdict_decisions_total'), scrape(await plain.metrics.registry.metrics(), 'verdict_decisions_total'));
    } finally {
      await Promise.all([plain.close(), shadowed.close(), candidate.close()]);
    }
  });

  test('in the default placement the shadow runs in the block worker, and its metrics reach the scrape', async () => {
    const file = relaxedTimeouts(await samplePipeline(editStep('gbt', (s) => ({ ...s, shadow: 'fraud_gbt@4' }))));
    const engine = await Engine.create({ ...file, runtime: { ...file.runtime, workers: 1, mode: 'blocks' } }, { baseDir });
    const server = await startMetricsServer({ registry: engine.metrics.registry, remote: () => engine.workerMetrics(), host: '127.0.0.1', port: 0, ready: () => true });
    try {
      const events = transactions(1000, 31, 0.2).map((t) => t.event);
      const { input, output } = engine.pipeline;
      const log = new EmbeddedLog();
      log.createTopic(input.topic, 2);
      log.createTopic(output.topic, 2);
      log.createTopic(output.deadLetter, 1);
      await log.producer().send(events.map((event) => ({ topic: input.topic, key: String(event['key']), value: JSON.stringify(event), headers: [] })));
      const stream = engine.stream(log.consumer({ groupId: 'shadow', topics: [input.topic] }), log.producer());
      await log.waitForRecords(output.topic, events.length);
      assert.deepEqual(await stream.drain(10_000), { drained: true, abandoned: 0 });
      const decisions = [0, 1].flatMap((p) => log.read(output.topic, p, 0)).map((r) => JSON.parse(String(r.value)) as Decision);
      assert.ok(decisions.every((d) => d.models['gbt'] === 'fraud_gbt@3'), 'the shadow never decides');
      // Each event is compared, or its shadow dropped and counted; comparisons finish after the block's reply.
      const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
      let compared = 0;
      const counted = async () => {
        const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
        compared = total(scrape(text, 'verdict_shadow_decisions_total'));
        return compared + total(scrape(text, 'verdict_shadow_dropped_total'));
      };
      let shadowCount = await counted();
      for (let attempt = 0; attempt < 200 && shadowCount < events.length; attempt++) {
        await sleep(100);
        shadowCount = await counted();
      }
      assert.equal(shadowCount, events.length);
      assert.ok(compared > events.length / 2, `${compared} events compared`);
    } finally {
      await server.close();
      await engine.close();
    }
  });
});
