/**
 * The registry's on-disk documents: a version's `manifest.json` and a model's `aliases.json`. Both are
 * validated on every read, and a failure names the file and the field, because they are edited by people and
 * written by training scripts as well as by the registry.
 */
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { formatZodError } from '../core/zod-error.js';
import { ELEMENT_TYPES, type ModelManifest, type TensorSpec } from './types.js';

const positiveInt = z.number().int().positive();

export const tensorSpecSchema = z.object({
  name: z.string().min(1),
  type: z.enum(ELEMENT_TYPES),
  shape: z
    .array(z.union([positiveInt, z.string().min(1)]))
    .min(1)
    // Verdict packs rows into batches along the first dimension, so it must be the dynamic one.
    .refine((shape) => typeof shape[0] === 'string', 'shape[0] must be the dynamic batch dimension, a name such as "N"'),
});

export const manifestSchema = z.object({
  name: z.string().min(1),
  version: positiveInt,
  description: z.string().default(''),
  createdAt: z.iso.datetime({ offset: true }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the lowercase hex sha256 of model.onnx'),
  inputs: z.array(tensorSpecSchema).min(1),
  outputs: z.array(tensorSpecSchema).min(1),
  metrics: z.record(z.string(), z.number()).default({}),
  training: z.record(z.string(), z.union([z.string(), z.number()])).exactOptional(),
});

const historyEntrySchema = z.object({
  alias: z.string().min(1),
  from: positiveInt.nullable(),
  to: positiveInt,
  at: z.string().min(1),
  /** Why the alias moved; absent in files written by hand or by older tools. */
  action: z.enum(['promote', 'rollback']).optional(),
});

export const aliasFileSchema = z.object({
  aliases: z.record(z.string(), positiveInt).default({}),
  history: z.array(historyEntrySchema).default([]),
});

export type AliasHistoryEntry = z.infer<typeof historyEntrySchema>;
export type AliasFile = z.infer<typeof aliasFileSchema>;

export const emptyAliasFile = (): AliasFile => ({ aliases: {}, history: [] });

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(`${file}: not valid JSON: ${(err as Error).message}`, { cause: err, details: { file } });
  }
}

/**
 * 16 MiB: far above any manifest or alias history a registry writes (an alias move is about 100 bytes), and
 * small enough that a wrong file is refused before it is read into memory.
 */
export const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/**
 * A registry document's text, once `stat` shows a regular file within MAX_DOCUMENT_BYTES: a FIFO would
 * block the read for ever, a device or a huge file would fill memory. ConfigError (CONFIG_INVALID) when
 * it is not; the read's own error (ENOENT…) as the cause of one otherwise.
 */
async function readDocument(file: string): Promise<string> {
  const info = await stat(file);
  if (!info.isFile()) throw new ConfigError(`${file} is not a regular file`, { details: { file } });
  if (info.size > MAX_DOCUMENT_BYTES) {
    throw new ConfigError(`${file} is ${info.size} bytes, above the ${MAX_DOCUMENT_BYTES}-byte bound of a registry document`, { details: { file } });
  }
  return readFile(file, 'utf8');
}

async function readText(file: string): Promise<string> {
  try {
    return await readDocument(file);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`, { cause: err, details: { file } });
  }
}

export function parseManifest(text: string, file: string): ModelManifest {
  const parsed = manifestSchema.safeParse(parseJson(text, file));
  if (!parsed.success) throw new ConfigError(formatZodError(parsed.error, file), { details: { file } });
  return parsed.data;
}

export async function readManifest(file: string): Promise<ModelManifest> {
  return parseManifest(await readText(file), file);
}

/** Reads a model's aliases; a model that never had one has no file, which reads as empty. */
export async function readAliasFile(file: string): Promise<AliasFile> {
  let text: string;
  try {
    text = await readDocument(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyAliasFile();
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`, { cause: err, details: { file } });
  }
  const parsed = aliasFileSchema.safeParse(parseJson(text, file));
  if (!parsed.success) throw new ConfigError(formatZodError(parsed.error, file), { details: { file } });
  return parsed.data;
}

/** Stable, readable JSON for files that people diff and review. */
export function toJsonText(value: ModelManifest | AliasFile): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export function describeSpec(spec: TensorSpec): string {
  return `${spec.name}: ${spec.type}[${spec.shape.join(', ')}]`;
}
