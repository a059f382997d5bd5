/** Test helpers: the sample pipeline file, loaded and tweakable, and event generation. */
import { createTransactionGenerator } from '../../bench/generator.js';
import { loadPipelineFile } from '../../config/load.js';
import type { PipelineFile } from '../../config/pipeline-schema.js';
import { defaultPipelinePath } from '../../core/paths.js';

export const samplePipelinePath = defaultPipelinePath;

export async function samplePipeline(edit: (file: PipelineFile) => PipelineFile = (f) => f): Promise<PipelineFile> {
  return edit(await loadPipelineFile(defaultPipelinePath));
}

export function transactions(n: number, seed = 7, fraudRate = 0.05): Array<{ event: Record<string, unknown>; isFraud: boolean }> {
  const gen = createTransactionGenerator({ seed, fraudRate });
  return Array.from({ length: n }, () => {
    const { event, isFraud } = gen.next();
    return { event: event, isFraud };
  });
}
