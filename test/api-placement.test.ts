/**
 * The programmatic API places work as the stream does, from the pipeline's `runtime` section through the
 * one placement decision: `mode: inference` runs its batches in a pool of inference workers, `mode: blocks`
 * and `workers: 0` on the calling thread; with only a registry (no pipeline file is read) the section's
 * defaults apply; `workers` overrides it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { Verdict } from '../index.js';
import { TYPES_DIR, TYPES_REGISTRY } from './helpers/typed-registry.js';

const dir = mkdtempSync(join(tmpdir(), 'verdict-api-placement-'));

/** The ratio fixture pipeline with this runtime section, written where a Verdict can read it. */
function ratioPipeline(name: string, runtime: Record<string, unknown>): string {
  const doc = parse(readFileSync(join(TYPES_DIR, 'ratio.yaml'), 'utf8')) as Record<string, unknown>;
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, stringify({ ...doc, models: { registry: TYPES_REGISTRY }, runtime }));
  return path;
}

describe('the programmatic API honours the pipeline placement', () => {
  const instances: Verdict[] = [];
  const make = (options: ConstructorParameters<typeof Verdict>[0]): Verdict => {
    const v = new Verdict(options);
    instances.push(v);
    return v;
  };
  after(async () => {
    await Promise.all(instances.map((v) => v.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('runtime.mode inference with 2 workers: batches run in 2 inference workers', async () => {
    const verdict = make({ pipeline: ratioPipeline('pooled', { mode: 'inference', workers: 2 }) });
    assert.deepEqual(await verdict.placement(), { blocks: 'main-thread', inference: 'pooled', workers: 2, intraOpThreads: 1 });
    assert.deepEqual(await verdict.executeModel('ratio', { a: [1], b: [3] }), { p: 0.25 });
    assert.equal((await verdict.executePipeline('ratio', { id: 'x', a: 19, b: 1 })).decision?.action, 'decline');
    // The pool is real: each of its workers answers on the metrics channel (a worker still loading
    // onnxruntime misses a request and answers the next).
    let answers: unknown[] = [];
    for (let attempt = 0; attempt < 30 && answers.length < 2; attempt++) answers = await verdict.workerMetrics();
    assert.equal(answers.length, 2);
  });

  test('runtime.mode blocks: calls from code run on the calling thread, as the engine\'s own actors do', async () => {
    const verdict = make({ pipeline: ratioPipeline('blocks', { mode: 'blocks', workers: 1 }) });
    assert.deepEqual(await verdict.placement(), { blocks: 'workers', inference: 'in-thread', workers: 1, intraOpThreads: 1 });
    assert.deepEqual(await verdict.executeModel('ratio', { a: [3], b: [1] }), { p: 0.75 });
    assert.deepEqual(await verdict.workerMetrics(), [], 'no inference workers');
  });

  test('runtime.workers 0: everything on the calling thread', async () => {
    const verdict = make({ pipeline: ratioPipeline('main', { mode: 'inference', workers: 0 }) });
    assert.deepEqual(await verdict.placement(), { blocks: 'main-thread', inference: 'in-thread', workers: 0, intraOpThreads: 1 });
    assert.deepEqual(await verdict.executeModel('ratio', { a: [1], b: [1] }), { p: 0.5 });
    assert.deepEqual(await verdict.workerMetrics(), []);
  });

  test('the workers option overrides the pipeline: n > 0 pools the batches', async () => {
    const verdict = make({ pipeline: ratioPipeline('override', { mode: 'blocks' }), workers: 1 });
    assert.equal((await verdict.placement()).inference, 'pooled');
    assert.deepEqual(await verdict.executeModel('ratio', { a: [1], b: [3] }), { p: 0.25 });
    assert.equal((await verdict.workerMetrics()).length, 1);
  });

  test('a registry alone: the runtime defaults, no pipeline file read', async () => {
    const verdict = make({ registry: TYPES_REGISTRY, pipeline: join(dir, 'does-not-exist.yaml') });
    assert.equal((await verdict.placement()).inference, 'in-thread');
    assert.deepEqual(await verdict.executeModel('ratio', { a: [1], b: [3] }), { p: 0.25 });
  });
});
