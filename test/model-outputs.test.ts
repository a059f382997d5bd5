/**
 * Issue 9, item 4: a model output of NaN or ±Infinity is not a result. The real `ratio` model computes
 * a / (a + b): 0/0 gives NaN and 1/(1 - 1) gives Infinity. Those rows fail their step with
 * MODEL_OUTPUT_INVALID, counted per model, while the other rows of the same batch keep their outputs; the
 * join then treats the step like any failed step.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ModelOutputError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import { BlockPool } from '../runtime/block-pool.js';
import { Engine } from '../runtime/engine.js';
import { Verdict } from '../runtime/verdict.js';
import type { InboundRecord } from '../pipeline/record.js';
import { compiled } from './helpers/pipelines.js';
import { TYPES_DIR, typedPipeline, type TypedPipelineSpec } from './helpers/typed-registry.js';

async function counterValue(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as Array<{ value: number; labels: Record<string, unknown>; metricName?: string }>;
  const hit = values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return hit?.value ?? 0;
}

async function histogram(metrics: Metrics, name: string, model: string): Promise<{ count: number; sum: number }> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as Array<{ value: number; labels: Record<string, unknown>; metricName?: string }>;
  const of = (suffix: string) => values.find((v) => v.metricName === `${name}_${suffix}` && v.labels['model'] === model)?.value ?? 0;
  return { count: of('count'), sum: of('sum') };
}

const twoSteps: TypedPipelineSpec = {
  fields: { a: 'number', b: 'number' },
  steps: [
    { id: 'ratio', model: 'ratio', inputs: { a: 'event.a', b: 'event.b' } },
    { id: 'ident', model: 't_float32', inputs: { x: 'event.a' } },
  ],
  rules: [{ when: 'steps.ratio.p > 0.9', action: 'decline', reason: 'ratio high' }],
  score: 'steps.ident.y',
  onIncomplete: { policy: 'fail-closed', action: 'review' },
  // Three events sent together fill one batch: the NaN and Infinity rows share it with a good one.
  batching: { maxBatchSize: 3, maxDelayMs: 1_000 },
};

describe('non-finite model outputs through the engine', () => {
  let engine: Engine;
  before(async () => {
    engine = await Engine.create(typedPipeline(twoSteps), { baseDir: TYPES_DIR });
  });
  after(async () => {
    await engine.close();
  });

  test('NaN and Infinity rows fail their step, their batch neighbour is ok, and the incomplete policy decides', async () => {
    const [nan, ok, inf] = await Promise.all([
      engine.evaluate({ id: 'nan', a: 0, b: 0 }),
      engine.evaluate({ id: 'ok', a: 1, b: 1 }),
      engine.evaluate({ id: 'inf', a: 1, b: -1 }),
    ]);
    assert.deepEqual(await histogram(engine.metrics, 'verdict_model_batch_size', 'ratio@1'), { count: 1, sum: 3 }, 'one batch of three rows');

    assert.equal(ok?.decision?.action, 'approve');
    assert.deepEqual(ok?.outputs['ratio'], { p: 0.5 });
    assert.equal(ok?.decision?.complete, true);
    for (const [r, a] of [[nan, 0], [inf, 1]] as const) {
      assert.ok(r?.decision);
      assert.equal(r.decision.action, 'review');
      assert.equal(r.decision.policy, 'fail-closed');
      assert.deepEqual(r.decision.reasons, ['incomplete:ratio']);
      assert.deepEqual(r.decision.completeness, { ratio: 'error', ident: 'ok' });
      assert.equal(r.outputs['ratio'], undefined, 'no NaN or Infinity reaches the decision');
      assert.equal(r.decision.score, a);
    }
    assert.equal(await counterValue(engine.metrics, 'verdict_model_output_invalid_total', { model: 'ratio@1' }), 2);
    assert.equal(await counterValue(engine.metrics, 'verdict_model_output_invalid_total', { model: 't_float32@1' }), 0);
    assert.equal(await counterValue(engine.metrics, 'verdict_errors_total', { component: 'model_actor', code: ModelOutputError.code }), 2);
  });

  test(`executeModel rejects a NaN output with ${ModelOutputError.code}`, async () => {
    await assert.rejects(engine.executeModel('ratio', { a: [0], b: [0] }), (err: Error & { code?: string; details?: Record<string, unknown> }) => {
      assert.equal(err.code, ModelOutputError.code);
      assert.equal(err.details?.['output'], 'p');
      assert.equal(err.details?.['value'], 'NaN');
      return true;
    });
    assert.deepEqual(await engine.executeModel('ratio', { a: [3], b: [1] }), { p: 0.75 });
  });
});

describe('a non-finite output when no step is usable, and a non-finite score', () => {
  test('with the failing step the only step, the event is dead-lettered with the code', async () => {
    const engine = await Engine.create(typedPipeline({ ...twoSteps, steps: [twoSteps.steps[0]!], score: 'steps.ratio.p' }), { baseDir: TYPES_DIR });
    try {
      const r = await engine.evaluate({ id: 'nan', a: 0, b: 0 });
      assert.equal(r.decision, null);
      assert.equal(r.outcome.kind, 'dead-letter');
      assert.equal(r.outcome.kind === 'dead-letter' ? r.outcome.error.code : '', ModelOutputError.code);
    } finally {
      await engine.close();
    }
  });

  test('a score expression that divides by zero gives score null and says why, never NaN or Infinity', async () => {
    const engine = await Engine.create(typedPipeline({ ...twoSteps, score: 'steps.ident.y / (event.a - event.a)' }), { baseDir: TYPES_DIR });
    try {
      const r = await engine.evaluate({ id: 'zero', a: 1, b: 3 });
      assert.equal(r.decision?.action, 'approve');
      assert.equal(r.decision?.score, null);
      assert.deepEqual(r.decision?.ruleErrors, ['decision.score: evaluated to Infinity, not a finite number']);
    } finally {
      await engine.close();
    }
  });
});

describe('non-finite model outputs through the programmatic API and the inference worker', () => {
  const verdict = new Verdict({ pipeline: join(TYPES_DIR, 'ratio.yaml'), workers: 1 });
  after(async () => {
    await verdict.close();
  });

  test(`Verdict.executeModel on the Piscina runner rejects 0/0 with ${ModelOutputError.code} and counts it`, async () => {
    await assert.rejects(verdict.executeModel('ratio', { a: [0], b: [0] }), { code: ModelOutputError.code });
    assert.deepEqual(await verdict.executeModel('ratio', { a: [1], b: [3] }), { p: 0.25 });
    assert.equal(await counterValue(verdict.metrics, 'verdict_model_output_invalid_total', { model: 'ratio@1' }), 1);
  });

  test('Verdict.executePipeline dead-letters 0/0 (its only step failed) and approves 1/(1+3)', async () => {
    const bad = await verdict.executePipeline('ratio', { id: 'nan', a: 0, b: 0 });
    // The only step failed: nothing is usable, so the event is a dead letter with the code.
    assert.equal(bad.outcome.kind === 'dead-letter' ? bad.outcome.error.code : bad.outcome.kind, ModelOutputError.code);
    const good = await verdict.executePipeline('ratio', { id: 'ok', a: 1, b: 3 });
    assert.equal(good.decision?.action, 'approve');
    assert.equal(good.decision?.score, null, 'no score expression and no *_probability output');
  });
});

describe('non-finite model outputs in a block worker', () => {
  test('the worker decides the NaN row by the incomplete policy, its neighbours normally, and counts it', async () => {
    const file = typedPipeline({ ...twoSteps, runtime: { workers: 1, mode: 'blocks' } });
    const pool = new BlockPool({ pipeline: await compiled(file, TYPES_DIR), logLevel: null });
    try {
      const events = [{ id: 'nan', a: 0, b: 0 }, { id: 'ok', a: 1, b: 1 }, { id: 'high', a: 19, b: 1 }];
      const records = events.map((event, offset): InboundRecord => ({
        topic: file.input.topic, partition: 0, offset, timestamp: 0, key: null, value: Buffer.from(JSON.stringify(event)), headers: [],
      }));
      const encoded = await pool.process(records);
      const decided = encoded.map((d) => {
        const body = JSON.parse(String(d.output.value)) as { action: string; reasons: string[]; outputs: Record<string, unknown> };
        return { kind: d.kind, action: body.action, reasons: body.reasons, ratio: body.outputs['ratio'] };
      });
      assert.deepEqual(decided, [
        { kind: 'decision', action: 'review', reasons: ['incomplete:ratio'], ratio: undefined },
        { kind: 'decision', action: 'approve', reasons: [], ratio: { p: 0.5 } },
        { kind: 'decision', action: 'decline', reasons: ['ratio high'], ratio: { p: 0.949999988079071 } },
      ]);
      const workers = (await pool.collectMetrics()) as Array<Array<{ name: string; values: Array<{ value: number; labels: Record<string, unknown> }> }>>;
      const invalid = workers.flat().filter((m) => m.name === 'verdict_model_output_invalid_total')
        .flatMap((m) => m.values).filter((v) => v.labels['model'] === 'ratio@1').reduce((n, v) => n + v.value, 0);
      assert.equal(invalid, 1);
    } finally {
      await pool.close();
    }
  });
});
