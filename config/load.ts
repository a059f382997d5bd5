/** Reading pipeline files: YAML in, a validated PipelineFile out, with errors that name the config path. */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../core/errors.js';
import { formatZodError } from '../core/zod-error.js';
import { pipelineFileSchema, type PipelineFile } from './pipeline-schema.js';

/**
 * A pipeline file's YAML text, validated by `pipelineFileSchema` (config/pipeline-schema.ts, where every
 * default lives) and defaulted. `source` names it in errors (default `pipeline`). Throws `ConfigError`
 * (CONFIG_INVALID) for invalid YAML or each invalid field path. Models and rules are checked later, by
 * `compilePipeline`.
 */
export function parsePipeline(text: string, source = 'pipeline'): PipelineFile {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  const parsed = pipelineFileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(formatZodError(parsed.error, source));
  return parsed.data;
}

/** Reads and parses a pipeline YAML file (`parsePipeline`); CONFIG_INVALID when it cannot be read or is invalid. */
export async function loadPipelineFile(path: string): Promise<PipelineFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read pipeline file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parsePipeline(text, path);
}
