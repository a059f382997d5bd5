/** Test helpers: the sample pipeline file, loaded and tweakable, and event generation. */
import { createTransactionGenerator } from '../../bench/generator.js';
import { isAbsolute, resolve } from 'node:path';
import type { CompiledPipeline } from '../../config/compiled.js';
import { compilePipeline } from '../../config/compile-pipeline.js';
import { loadPipelineFile } from '../../config/load.js';
import { ModelRegistry } from '../../models/registry.js';
import type { PipelineFile } from '../../config/pipeline-schema.js';
import { defaultPipelinePath } from '../../core/paths.js';

export const samplePipelinePath = defaultPipelinePath;

export async function samplePipeline(edit: (file: PipelineFile) => PipelineFile = (f) => f): Promise<PipelineFile> {
  return edit(await loadPipelineFile(defaultPipelinePath));
}

/** A pipeline file compiled against the registry it names (relative to `baseDir`), as the engine compiles it. */
export function compiled(file: PipelineFile, baseDir: string): Promise<CompiledPipeline> {
  const root = isAbsolute(file.models.registry) ? file.models.registry : resolve(baseDir, file.models.registry);
  return compilePipeline(file, new ModelRegistry(root), { baseDir });
}

/**
 * The sample pipeline with step timeouts of 2 s and a 5 s join deadline: for tests of routing and decisions
 * on a shared 2-core machine, where a busy neighbour can stretch a batch past the production 50 ms.
 */
export function relaxedTimeouts(file: PipelineFile): PipelineFile {
  return {
    ...file,
    steps: file.steps.map((s) => ({ ...s, timeoutMs: 2_000 })),
    join: { ...file.join, deadlineMs: 5_000 },
  };
}

export function transactions(n: number, seed = 7, fraudRate = 0.05): Array<{ event: Record<string, unknown>; isFraud: boolean }> {
  const gen = createTransactionGenerator({ seed, fraudRate });
  return Array.from({ length: n }, () => {
    const { event, isFraud } = gen.next();
    return { event: event, isFraud };
  });
}
