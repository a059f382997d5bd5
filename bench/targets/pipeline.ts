/**
 * The pipeline every target runs, loaded from the same file, with its topics renamed when a target needs
 * topics of its own (a fresh set per run on a shared Kafka cluster).
 */
import { dirname, resolve } from 'node:path';
import type { CompiledPipeline } from '../../config/compiled.js';
import { compilePipeline } from '../../config/compile-pipeline.js';
import { loadPipelineFile } from '../../config/load.js';
import type { PipelineFile } from '../../config/pipeline-schema.js';
import { silentLogger, type Logger } from '../../core/log.js';
import { ModelRegistry } from '../../models/registry.js';

export interface BenchTopics {
  readonly input: string;
  readonly output: string;
  readonly deadLetter: string;
}

export interface LoadedPipeline {
  readonly file: PipelineFile;
  readonly baseDir: string;
}

export async function loadBenchPipeline(path: string, topics?: BenchTopics): Promise<LoadedPipeline> {
  const loaded = await loadPipelineFile(path);
  // The bench replays its event pool forward in event time (bench/events.ts), past the machine's clock on a
  // long run: the bound on event times ahead of the record's (`state.maxAhead`) is lifted here.
  const file: PipelineFile = loaded.state === undefined ? loaded : { ...loaded, state: { ...loaded.state, maxAhead: '36500d' } };
  const renamed: PipelineFile = topics === undefined ? file : {
    ...file,
    input: { ...file.input, topic: topics.input },
    output: { ...file.output, topic: topics.output, deadLetter: topics.deadLetter },
  };
  return { file: renamed, baseDir: dirname(resolve(path)) };
}

/** Compiles the pipeline against its registry: what the baselines read their models and features from. */
export async function compileBenchPipeline(path: string, logger: Logger = silentLogger, topics?: BenchTopics): Promise<CompiledPipeline> {
  const { file, baseDir } = await loadBenchPipeline(path, topics);
  const root = file.models.registry.startsWith('/') ? file.models.registry : resolve(baseDir, file.models.registry);
  return compilePipeline(file, new ModelRegistry(root, logger), { baseDir });
}
