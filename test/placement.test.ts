/**
 * Placement is decided once, when the pipeline is compiled: each `runtime` section gives one complete
 * placement (blocks on the main thread or in workers, inference in-thread or pooled, thread counts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { placementOf, type Placement } from '../config/placement.js';
import { pipelineFileSchema, runtimeSchema } from '../config/pipeline-schema.js';
import { compilePipeline } from '../config/compile-pipeline.js';
import { ModelRegistry } from '../models/registry.js';
import { samplePipeline, samplePipelinePath } from './helpers/pipelines.js';
import { dirname, resolve } from 'node:path';

describe('placement', () => {
  const cases: Array<[string, unknown, number, Placement]> = [
    ['no runtime section on 2 cores: blocks in cores − 1 workers', {}, 2, { blocks: 'workers', inference: 'in-thread', workers: 1, intraOpThreads: 1 }],
    ['no runtime section on 8 cores', {}, 8, { blocks: 'workers', inference: 'in-thread', workers: 7, intraOpThreads: 1 }],
    ['one core still gets one worker', {}, 1, { blocks: 'workers', inference: 'in-thread', workers: 1, intraOpThreads: 1 }],
    ['mode: blocks, 3 workers, 2 intra-op threads', { mode: 'blocks', workers: 3, intraOpThreads: 2 }, 2, { blocks: 'workers', inference: 'in-thread', workers: 3, intraOpThreads: 2 }],
    ['mode: inference: blocks on the main thread, batches pooled', { mode: 'inference' }, 4, { blocks: 'main-thread', inference: 'pooled', workers: 3, intraOpThreads: 1 }],
    ['mode: inference, 2 workers', { mode: 'inference', workers: 2 }, 2, { blocks: 'main-thread', inference: 'pooled', workers: 2, intraOpThreads: 1 }],
    ['workers: 0 in blocks mode: everything on the main thread', { mode: 'blocks', workers: 0 }, 2, { blocks: 'main-thread', inference: 'in-thread', workers: 0, intraOpThreads: 1 }],
    ['workers: 0 in inference mode: everything on the main thread', { mode: 'inference', workers: 0 }, 2, { blocks: 'main-thread', inference: 'in-thread', workers: 0, intraOpThreads: 1 }],
  ];
  for (const [name, runtime, cores, want] of cases) {
    test(name, () => {
      assert.deepEqual(placementOf(runtimeSchema.parse(runtime), cores), want);
    });
  }

  test('a pipeline file without a runtime section gets the schema defaults', async () => {
    const { runtime: _runtime, ...rest } = await samplePipeline();
    assert.deepEqual(pipelineFileSchema.parse(rest).runtime, runtimeSchema.parse({}));
  });

  test('the compiled pipeline carries the placement of its runtime section', async () => {
    const file = await samplePipeline();
    const baseDir = dirname(samplePipelinePath);
    const registry = new ModelRegistry(resolve(baseDir, file.models.registry));
    for (const [, runtime, cores, want] of cases) {
      const compiled = await compilePipeline({ ...file, runtime: runtimeSchema.parse(runtime) }, registry, { baseDir, cores });
      assert.deepEqual(compiled.placement, want);
    }
  });
});
