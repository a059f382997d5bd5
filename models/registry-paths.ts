/**
 * Every path the registry reads or writes, and the proof that it stays inside the registry directory.
 *
 * Two checks, both needed. Lexically, a path is built only from a validated name (model-id.ts: one plain
 * directory name) and a version number, so `..`, `/etc`, NUL bytes or Unicode dots never reach `join`.
 * Physically, the path's `realpath` must lie inside the registry's own `realpath`: a model directory, version
 * directory, `model.onnx`, `manifest.json` or `aliases.json` that is a symlink pointing out of the registry
 * is refused, whatever the names. A registry directory that is itself a symlink is fine: containment is
 * measured from where it points. Symlinks that stay inside (a version sharing another's file) are allowed.
 *
 * What is not covered: a symlink swapped in between the check and the read (the registry is trusted not
 * to be rewritten by a hostile process while it runs; this guards against hand edits, bad copies and
 * crafted archives).
 */
import { lstat, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { RegistryPathError } from '../core/errors.js';
import { assertModelName, assertVersion } from './model-id.js';

export const MODEL_FILE = 'model.onnx';
export const MANIFEST_FILE = 'manifest.json';
export const ALIAS_FILE = 'aliases.json';

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

/** True when `child` (absolute, resolved) is `parent` or below it. */
export function isWithin(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`));
}

/** The registry's paths (layout in registry.ts), each built from a checked name and version. */
export class RegistryPaths {
  /** The registry directory, absolute (as given: it may be a symlink). */
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  modelDir(name: string): string {
    return this.#lexical(join(this.root, assertModelName(name)));
  }

  versionDir(name: string, version: number): string {
    return this.#lexical(join(this.root, assertModelName(name), String(assertVersion(version))));
  }

  modelFile(name: string, version: number): string {
    return join(this.versionDir(name, version), MODEL_FILE);
  }

  manifestFile(name: string, version: number): string {
    return join(this.versionDir(name, version), MANIFEST_FILE);
  }

  aliasFile(name: string): string {
    return join(this.modelDir(name), ALIAS_FILE);
  }

  /**
   * Resolves `path` (every symlink on the way) and returns it when it is inside the registry; throws
   * RegistryPathError (REGISTRY_PATH_INVALID) when it resolves outside. A path that does not exist (yet)
   * passes: reading it fails as not found, and the registry writes only with O_EXCL or by rename, which
   * never follow a symlink. A dangling symlink is refused, since where it would lead cannot be checked.
   */
  async inside(path: string): Promise<string> {
    const root = await this.#realRoot();
    let real: string;
    try {
      real = await realpath(path);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENOTDIR') throw err;
      if (await isSymlink(path)) throw this.#refused(path, 'is a symlink to nothing, so where it leads cannot be checked');
      return path;
    }
    if (!isWithin(root, real)) throw this.#refused(path, `resolves to ${real}, outside the registry`);
    return path;
  }

  /** The registry directory's real path; the directory itself may be a symlink, or not exist yet. */
  async #realRoot(): Promise<string> {
    try {
      return await realpath(this.root);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return this.root;
      throw err;
    }
  }

  /** A path built from checked segments is inside by construction; checked again so no later edit can break it. */
  #lexical(path: string): string {
    if (!isWithin(this.root, path) || path.includes('\0')) throw this.#refused(path, 'is outside the registry');
    return path;
  }

  #refused(path: string, how: string): RegistryPathError {
    return new RegistryPathError(`${JSON.stringify(path)} ${how}: paths in the model registry ${this.root} may not lead out of it`, {
      details: { path, root: this.root },
    });
  }
}

async function isSymlink(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSymbolicLink();
  } catch {
    return false;
  }
}
