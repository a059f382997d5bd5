/** Reading pipeline files: YAML in, a validated PipelineFile out, with errors that name the config path. */
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
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
  const doc = parseDocument(text);
  // A key given twice in one map (two aggregates of one name, say) is named by its config path.
  const duplicate = doc.errors.some((e) => e.code === 'DUPLICATE_KEY') ? duplicateKeyPath(doc.contents, '') : null;
  if (duplicate !== null) throw new ConfigError(`${source} is invalid:\n  ${duplicate}: given twice; each key of a map must be unique`, { details: { path: duplicate } });
  const error = doc.errors[0];
  if (error !== undefined) throw new ConfigError(`${source}: not valid YAML: ${error.message}`, { cause: error });
  const raw: unknown = doc.toJS();
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

/** The config path (`state.aggregates.txn_count_1h`) of the first key a map repeats, or null. */
function duplicateKeyPath(node: YamlNode | null, path: string): string | null {
  if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) {
      const found = duplicateKeyPath(item as YamlNode, `${path}[${i}]`);
      if (found !== null) return found;
    }
  } else if (isMap(node)) {
    const seen = new Set<unknown>();
    for (const item of node.items) {
      const key = isScalar(item.key) ? item.key.value : item.key;
      const at = `${path}${path === '' ? '' : '.'}${String(key)}`;
      if (seen.has(key)) return at;
      seen.add(key);
      const found = duplicateKeyPath(item.value as YamlNode, at);
      if (found !== null) return found;
    }
  }
  return null;
}
