import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ModelInputError, ModelNotFoundError, WorkerCrashedError } from '../core/errors.js';
import { createMetrics } from '../core/metrics.js';
import { packageRoot } from '../core/paths.js';
import { ModelActor } from '../actors/model-actor.js';
import { InThreadRunner } from '../models/in-thread-runner.js';
import { PiscinaRunner } from '../runtime/workers/piscina-runner.js';
import { packRows } from '../models/tensors.js';
import type { ResolvedModel, RowInputs, TensorSpec } from '../models/types.js';
import { CRASH_MARKER } from './fixtures/actors/crashing-worker.js';

const FIXTURES = resolve(packageRoot, 'test/fixtures/actors');

function fixture(file: string, inputs: TensorSpec[], outputs: TensorSpec[]): ResolvedModel {
  const path = resolve(FIXTURES, file);
  const sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
  const name = file.replace('.onnx', '');
  return {
    name, version: 1, ref: `${name}@1`, path,
    manifest: { name, version: 1, description: 'test fixture', createdAt: '2024-01-01T00:00:00Z', sha256, inputs, outputs, metrics: {} },
  };
}

const linear16 = fixture(
  'linear16.onnx',
  [{ name: 'features', type: 'float32', shape: ['N', 16] }],
  [{ name: 'probability', type: 'float32', shape: ['N', 1] }, { name: 'embedding', type: 'float32', shape: ['N', 2] }],
);
const int64Sum = fixture(
  'int64_sum.onnx',
  [{ name: 'ids', type: 'int64', shape: ['N', 3] }],
  [{ name: 'total', type: 'int64', shape: ['N', 1] }],
);

/** What linear16 computes, redone here (make_fixtures.py documents the weights). */
function expected(features: readonly number[]) {
  const f32 = Float32Array.from(features);
  let logit = 0.25;
  let even = 0;
  let odd = 0;
  f32.forEach((v, i) => {
    logit += v * ((i - 7.5) / 16);
    if (i % 2 === 0) even += v;
    else odd += v;
  });
  return { probability: 1 / (1 + Math.exp(-logit)), embedding: [even, odd] };
}

const rows: RowInputs[] = Array.from({ length: 20 }, (_, r) => ({
  features: Array.from({ length: 16 }, (_, i) => ((r * 7 + i * 3) % 11) / 4 - 1),
}));

const pool = new PiscinaRunner({ threads: 1 });
const inThread = new InThreadRunner();
const crashMetrics = createMetrics();
const crashingPool = new PiscinaRunner({
  threads: 1,
  filename: new URL('./fixtures/actors/crashing-worker.js', import.meta.url),
  metrics: crashMetrics,
});
after(async () => {
  await Promise.all([pool.close(), inThread.close(), crashingPool.close()]);
});

void test('the fixture gives identical outputs through PiscinaRunner and InThreadRunner, matching its weights', async () => {
  const viaPool = new ModelActor({ model: linear16, runner: pool });
  const viaThread = new ModelActor({ model: linear16, runner: inThread });
  await Promise.all([viaPool.start(), viaThread.start()]);
  const [a, b] = await Promise.all([
    Promise.all(rows.map((row) => viaPool.infer(row))),
    Promise.all(rows.map((row) => viaThread.infer(row))),
  ]);
  assert.deepEqual(a, b);
  rows.forEach((row, i) => {
    const want = expected(row['features'] as number[]);
    const got = a[i]!;
    assert.ok(Math.abs((got['probability'] as number) - want.probability) < 1e-6);
    assert.deepEqual(got['embedding'], want.embedding.map((v) => Math.fround(v)));
  });
  await Promise.all([viaPool.stop(), viaThread.stop()]);
});

void test('int64 inputs and outputs cross the worker boundary', async () => {
  const actor = new ModelActor({ model: int64Sum, runner: pool });
  const results = await Promise.all([actor.infer({ ids: [1, 2, 3] }), actor.infer({ ids: [-10, 2 ** 40, 5] })]);
  assert.deepEqual(results, [{ total: 6 }, { total: 2 ** 40 - 5 }]);
  await actor.stop();
});

void test('an input error raised inside the worker arrives as ModelInputError with its code', async () => {
  const inputs = packRows([{ name: 'features', type: 'float32', shape: ['N', 15] }], [{ features: new Array<number>(15).fill(0) }]);
  const task = { modelPath: linear16.path, modelSha256: linear16.manifest.sha256, inputs, outputNames: ['probability'] };
  await assert.rejects(pool.run(task), (e: unknown) => {
    assert.ok(e instanceof ModelInputError);
    assert.equal(e.code, 'MODEL_INPUT_INVALID');
    assert.match(e.message, /invalid dimensions/);
    return true;
  });
});

void test('a missing model file arrives from the worker as ModelNotFoundError', async () => {
  const inputs = packRows(linear16.manifest.inputs, [rows[0]!]);
  const task = { modelPath: resolve(FIXTURES, 'absent.onnx'), modelSha256: '0', inputs, outputNames: ['probability'] };
  await assert.rejects(pool.run(task), ModelNotFoundError);
});

void test('a row that crashes its worker, on the retry too, fails alone with WorkerCrashedError; its neighbour and later batches run', async () => {
  const actor = new ModelActor({ model: linear16, runner: crashingPool, maxDelayMs: 1 });
  const poisoned = { features: [CRASH_MARKER, ...new Array<number>(15).fill(0)] };
  const [neighbour, crashed] = await Promise.allSettled([actor.infer(rows[0]!), actor.infer(poisoned)]);
  assert.ok(crashed.status === 'rejected' && crashed.reason instanceof WorkerCrashedError);
  assert.ok(neighbour.status === 'fulfilled');
  assert.ok(Math.abs((neighbour.value['probability'] as number) - expected(rows[0]!['features'] as number[]).probability) < 1e-6);
  // The batch ran twice (one retry), then bisected: the poisoned half crashed once more. Piscina replaced all three.
  const { values } = await crashMetrics.workerRestarts.get();
  assert.equal(values[0]?.value, 3);
  const after = await actor.infer(rows[1]!);
  assert.ok(Math.abs((after['probability'] as number) - expected(rows[1]!['features'] as number[]).probability) < 1e-6);
  await actor.stop();
});
