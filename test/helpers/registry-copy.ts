/**
 * A private copy of the shipped model registry for tests that change it under a running engine: versions
 * added the honest way (`ModelRegistry.register`) and the dishonest ways a hand edit or a bad copy leaves
 * behind (a file whose bytes do not match the manifest's sha256; a manifest that lies about the model).
 */
import { cp, mkdir, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { packageRoot } from '../../core/paths.js';
import { sha256Bytes } from '../../models/integrity.js';
import type { AliasFile } from '../../models/manifest.js';
import type { ModelManifest } from '../../models/types.js';

export const shippedRegistry = resolve(packageRoot, 'models/registry');

/** A fresh copy of models/registry in a temp directory; its absolute path. */
export async function copyRegistry(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'verdict-registry-'));
  await cp(shippedRegistry, root, { recursive: true });
  return root;
}

/** The shipped model file of `name@version`. */
export const shippedModel = (name: string, version: number): string => join(shippedRegistry, name, String(version), 'model.onnx');

/** Points `alias` at `version` by rewriting aliases.json (atomically), as another process or a hand edit would, with no checks. */
export async function writeAlias(root: string, name: string, alias: string, version: number): Promise<void> {
  const path = join(root, name, 'aliases.json');
  const file = JSON.parse(await readFile(path, 'utf8')) as AliasFile;
  file.history.push({ alias, from: file.aliases[alias] ?? null, to: version, at: new Date().toISOString(), action: 'promote' });
  file.aliases[alias] = version;
  await writeFile(`${path}.tmp`, JSON.stringify(file, null, 2));
  await rename(`${path}.tmp`, path);
}

/**
 * Writes `name@version` by hand: `modelFile`'s bytes under a copy of `manifestOf`'s manifest (name and
 * version set). `sha256`: 'honest' (of the bytes written) or 'wrong' (of other bytes: the file does not
 * match its manifest).
 */
export async function writeVersionByHand(
  root: string, name: string, version: number,
  options: { modelFile: string; manifestOf: { name: string; version: number }; sha256: 'honest' | 'wrong' },
): Promise<void> {
  const bytes = await readFile(options.modelFile);
  const manifest = JSON.parse(await readFile(join(root, options.manifestOf.name, String(options.manifestOf.version), 'manifest.json'), 'utf8')) as ModelManifest;
  const sha256 = options.sha256 === 'honest' ? sha256Bytes(bytes) : sha256Bytes(Buffer.concat([bytes, Buffer.from('x')]));
  const dir = join(root, name, String(version));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), bytes);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, name, version, sha256 }, null, 2));
}
