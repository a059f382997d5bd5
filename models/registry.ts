/**
 * The versioned model registry: a directory tree, so it can be reviewed, copied and shipped as files.
 *
 *   <root>/<name>/<version>/model.onnx       the model, never changed once written
 *   <root>/<name>/<version>/manifest.json    its signature, sha256, metrics and provenance
 *   <root>/<name>/aliases.json               alias → version, and the history of every move
 *
 * Every read validates what it reads and every resolve checks the model's sha256, so a hand edit or a
 * corrupted copy fails loudly at start-up instead of scoring traffic with the wrong model. Every write is
 * atomic: a version appears whole (its directory is staged under a dot-name and renamed into place) and
 * aliases.json is replaced by rename.
 *
 * Every path is built from a checked name and version and proven to stay inside the registry, symlinks
 * included (registry-paths.ts: REGISTRY_PATH_INVALID), and every model file's size is checked before it is
 * read (model-file.ts: MODEL_FILE_TOO_LARGE past `maxModelBytes`).
 */
import type { Dirent } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import type { Clock } from '../core/clock.js';
import { ConfigError, ModelIntegrityError, ModelNotFoundError, RegistryPathError, asVerdictError, isVerdictError } from '../core/errors.js';
import { componentLogger, silentLogger, type Logger } from '../core/log.js';
import { syncDirectory, writeDurable, writeFileAtomic } from './atomic-write.js';
import { HashCache, sha256Bytes } from './integrity.js';
import { readAliasFile, readManifest, toJsonText, type AliasFile, type AliasHistoryEntry } from './manifest.js';
import { DEFAULT_ALIAS, assertAlias, assertModelName, assertVersion, modelRef, parseModelId, parseVersion } from './model-id.js';
import { DEFAULT_MAX_MODEL_BYTES, checkModelFileSize, readModelFile } from './model-file.js';
import { MANIFEST_FILE, MODEL_FILE, RegistryPaths } from './registry-paths.js';
import { verifyModel } from './signature.js';
import { verifyManifestSignature } from './verify-version.js';
import type { ModelManifest, ResolvedModel, TensorSpec } from './types.js';

export interface ModelSummary {
  readonly name: string;
  /** Ascending. */
  readonly versions: readonly number[];
  readonly aliases: Readonly<Record<string, number>>;
  /**
   * Set when the model could not be listed (a directory or aliases file that escapes the registry,
   * REGISTRY_PATH_INVALID; an unreadable aliases file): its code and message. Versions and aliases are then
   * empty. One broken model does not hide the others.
   */
  readonly problem?: { readonly code: string; readonly message: string };
}

export interface ModelInspection {
  readonly model: ResolvedModel;
  /** Aliases that point at this version. */
  readonly aliases: readonly string[];
  readonly sizeBytes: number;
  /** Inspect reports a hash mismatch instead of refusing, so a damaged version can still be looked at. */
  readonly integrity: { readonly ok: boolean; readonly actualSha256: string };
}

export interface RegisterOptions {
  readonly description?: string;
  readonly metrics?: Readonly<Record<string, number>>;
  readonly training?: Readonly<Record<string, string | number>>;
  /** Defaults to the highest existing version + 1. An existing version is never overwritten. */
  readonly version?: number;
  /** The signature the caller expects; registration fails with ModelSignatureError if the model differs. */
  readonly inputs?: readonly TensorSpec[];
  readonly outputs?: readonly TensorSpec[];
  /** Point this alias at the new version once it is written. */
  readonly alias?: string;
}

export interface AliasChange {
  readonly name: string;
  readonly alias: string;
  readonly from: number | null;
  readonly to: number;
  readonly at: string;
}

export interface RegistryOptions {
  /** Timestamps for manifests and alias history; an RxJS scheduler fits. */
  readonly clock?: Pick<Clock, 'now'>;
  /** Verified hashes; pass one cache to successive registries (a config reload) so they share it. */
  readonly hashCache?: HashCache;
  /**
   * The largest model file (bytes) registered, resolved, inspected or promoted; checked with `stat` before
   * reading. Default 1 GiB (`DEFAULT_MAX_MODEL_BYTES`); a pipeline sets it as `models.maxModelBytes`.
   */
  readonly maxModelBytes?: number;
}
/** Attempts at claiming the next version number when concurrent registrations race for it. */
const CLAIM_ATTEMPTS = 5;

const listText = (items: readonly (string | number)[]): string => (items.length === 0 ? 'none' : items.join(', '));
function lastMove(history: readonly AliasHistoryEntry[], alias: string): AliasHistoryEntry | undefined {
  for (let i = history.length - 1; i >= 0; i--) if (history[i]?.alias === alias) return history[i];
  return undefined;
}
const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;
/** Dot-names are staging directories and temporary files, never models or versions. */
const visible = (e: Dirent): boolean => !e.name.startsWith('.') && (e.isDirectory() || e.isSymbolicLink());

/**
 * A registry directory (layout above), read and written through this class: `resolve` a model id, `list`,
 * `inspect`, and the writes `register`, `promote`, `rollback`. Nothing is read at construction. Reads throw
 * `ModelNotFoundError` (MODEL_NOT_FOUND), `ModelIntegrityError` (MODEL_INTEGRITY), `ConfigError`
 * (CONFIG_INVALID: a manifest or aliases file that fails validation), `RegistryPathError`
 * (REGISTRY_PATH_INVALID: a name that is not one plain directory name, or a path that a symlink leads out of
 * the registry) or `ModelFileTooLargeError` (MODEL_FILE_TOO_LARGE: a model file above `maxModelBytes`).
 */
export class ModelRegistry {
  /** The registry directory, absolute. */
  readonly root: string;
  /** The model file bound, bytes (`RegistryOptions.maxModelBytes`). */
  readonly maxModelBytes: number;
  private readonly paths: RegistryPaths;
  private readonly log: Logger;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly hashes: HashCache;

  constructor(root: string, logger: Logger = silentLogger, options: RegistryOptions = {}) {
    this.root = resolvePath(root);
    this.paths = new RegistryPaths(this.root);
    this.maxModelBytes = options.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES;
    if (!Number.isSafeInteger(this.maxModelBytes) || this.maxModelBytes <= 0) {
      throw new ConfigError(`maxModelBytes ${String(options.maxModelBytes)}: must be a positive whole number of bytes`);
    }
    this.log = componentLogger(logger, 'registry');
    this.clock = options.clock ?? Date;
    this.hashes = options.hashCache ?? new HashCache();
  }

  /**
   * Every model in the registry (by name) with its versions (ascending) and aliases; a model that cannot be
   * listed carries its `problem` instead. CONFIG_INVALID when the registry directory itself cannot be read.
   */
  async list(): Promise<ModelSummary[]> {
    const names = await this.modelNames();
    return Promise.all(
      names.map(async (name): Promise<ModelSummary> => {
        try {
          return { name, versions: (await this.versionsOf(name)) ?? [], aliases: (await this.aliasFile(name)).aliases };
        } catch (error) {
          const { code, message } = asVerdictError(error);
          return { name, versions: [], aliases: {}, problem: { code, message } };
        }
      }),
    );
  }

  /** Resolves an id to one verified version: the manifest is valid and model.onnx has the manifest's sha256. */
  async resolve(id: string): Promise<ResolvedModel> {
    const { name, version } = await this.locate(id);
    const model = await this.load(name, version);
    const { sha256 } = await this.hashes.hash(model.path);
    if (sha256 !== model.manifest.sha256) {
      throw new ModelIntegrityError(
        `${model.path} does not match its manifest: expected sha256 ${model.manifest.sha256}, actual ${sha256}`,
        { details: { path: model.path, expected: model.manifest.sha256, actual: sha256 } },
      );
    }
    this.log.debug({ id, ref: model.ref }, 'model resolved');
    return model;
  }

  /**
   * One version's manifest, aliases, file size (bytes) and integrity; unlike `resolve` it reports a sha256
   * mismatch (`integrity.ok: false`) instead of throwing. Throws MODEL_NOT_FOUND for an unknown id.
   */
  async inspect(id: string): Promise<ModelInspection> {
    const { name, version, aliases } = await this.locate(id);
    const model = await this.load(name, version);
    const { sha256, size } = await this.hashes.hash(model.path);
    return {
      model,
      aliases: Object.entries(aliases.aliases).filter(([, v]) => v === version).map(([a]) => a).sort(),
      sizeBytes: size,
      integrity: { ok: sha256 === model.manifest.sha256, actualSha256: sha256 },
    };
  }

  /**
   * Adds a version: the file must be at most `maxModelBytes` (checked before it is read:
   * MODEL_FILE_TOO_LARGE), load in onnxruntime, match the expected signature if one is given, and score a
   * batch of two zero rows. The bytes that were checked are the bytes written.
   */
  async register(name: string, onnxFile: string, options: RegisterOptions = {}): Promise<ResolvedModel> {
    assertModelName(name);
    if (options.version !== undefined) assertVersion(options.version);
    if (options.alias !== undefined) assertAlias(options.alias);
    let bytes: Buffer;
    try {
      bytes = await readModelFile(onnxFile, this.maxModelBytes);
    } catch (err) {
      if (isVerdictError(err)) throw err;
      throw new ConfigError(`cannot read model file ${onnxFile}: ${(err as Error).message}`, { cause: err, details: { path: onnxFile } });
    }
    const expected = { ...(options.inputs && { inputs: options.inputs }), ...(options.outputs && { outputs: options.outputs }) };
    const signature = await verifyModel(bytes, onnxFile, expected);
    const dir = this.paths.modelDir(name);
    await mkdir(dir, { recursive: true });
    // An existing model directory that is a symlink out of the registry would receive the new version.
    await this.paths.inside(dir);
    if (options.version !== undefined && (await this.versionsOf(name))?.includes(options.version)) {
      throw this.versionExists(name, options.version);
    }
    const base = {
      name,
      description: options.description ?? '',
      createdAt: new Date(this.clock.now()).toISOString(),
      sha256: sha256Bytes(bytes),
      inputs: signature.inputs,
      outputs: signature.outputs,
      metrics: { ...options.metrics },
      ...(options.training && { training: { ...options.training } }),
    };
    const staging = await mkdtemp(join(dir, '.staging-'));
    let manifest: ModelManifest | undefined;
    try {
      await writeDurable(join(staging, MODEL_FILE), bytes);
      for (let attempt = 1; manifest === undefined; attempt++) {
        const version = options.version ?? Math.max(0, ...((await this.versionsOf(name)) ?? [])) + 1;
        const candidate: ModelManifest = { ...base, version };
        await rm(join(staging, MANIFEST_FILE), { force: true });
        await writeDurable(join(staging, MANIFEST_FILE), toJsonText(candidate));
        await syncDirectory(staging);
        try {
          // Renaming the whole directory publishes model and manifest together, and fails if the version exists.
          await rename(staging, this.paths.versionDir(name, version));
          manifest = candidate;
        } catch (err) {
          const taken = errnoOf(err) === 'ENOTEMPTY' || errnoOf(err) === 'EEXIST';
          if (!taken) throw err;
          if (options.version !== undefined || attempt >= CLAIM_ATTEMPTS) throw this.versionExists(name, version);
        }
      }
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    await syncDirectory(dir);
    const model = this.resolved(manifest);
    await this.hashes.remember(model.path, manifest.sha256);
    this.log.info({ ref: model.ref, sha256: manifest.sha256 }, 'model registered');
    // The bytes just written were verified above: the alias moves without loading them again.
    if (options.alias !== undefined) await this.moveAlias(name, await this.aliasFile(name), options.alias, manifest.version, 'promote');
    return model;
  }

  /**
   * Points an alias at a version and records the move. The version must exist, match its sha256
   * (MODEL_INTEGRITY) and load in onnxruntime with the signature its manifest claims
   * (MODEL_SIGNATURE_MISMATCH, models/verify-version.ts): an alias never moves to a version no engine
   * could run.
   */
  async promote(name: string, version: number, alias: string = DEFAULT_ALIAS): Promise<AliasChange> {
    assertModelName(name);
    assertVersion(version);
    assertAlias(alias);
    await verifyManifestSignature(await this.resolve(modelRef(name, version)), this.maxModelBytes);
    const file = await this.aliasFile(name);
    return this.moveAlias(name, file, alias, version, 'promote');
  }

  /**
   * Undoes the alias's latest move: points it back to where it was before that move (checked as `promote`
   * checks), and records the rollback as a move of its own. So a second rollback undoes the first (it
   * toggles between the last two versions); to go further back, promote the version wanted.
   */
  async rollback(name: string, alias: string = DEFAULT_ALIAS): Promise<AliasChange> {
    assertModelName(name);
    assertAlias(alias);
    const file = await this.aliasFile(name);
    const last = lastMove(file.history, alias);
    if (last === undefined || last.from === null) {
      throw new ConfigError(`cannot roll back ${name}@${alias}: its history has no earlier version`, { details: { name, alias } });
    }
    await verifyManifestSignature(await this.resolve(modelRef(name, last.from)), this.maxModelBytes);
    return this.moveAlias(name, file, alias, last.from, 'rollback');
  }

  // ---- internals ---------------------------------------------------------------------------------------

  /** The model's aliases file, read once it is proven to be inside the registry. */
  private async aliasFile(name: string): Promise<AliasFile> {
    return readAliasFile(await this.paths.inside(this.paths.aliasFile(name)));
  }

  private resolved(manifest: ModelManifest): ResolvedModel {
    const { name, version } = manifest;
    return { name, version, ref: modelRef(name, version), path: this.paths.modelFile(name, version), manifest };
  }

  /**
   * The entries of a registry directory that can hold a model or a version: directories, and symlinks that
   * stay inside the registry and lead to a directory (one leading out throws REGISTRY_PATH_INVALID).
   */
  /**
   * The entries that are directories (or symlinks to directories inside the registry). A symlink that leads
   * out throws REGISTRY_PATH_INVALID, unless `escaping: 'keep'`, which keeps its name so that the caller
   * reports it per entry (list) rather than failing for all.
   */
  private async directories(dir: string, entries: readonly Dirent[], escaping: 'throw' | 'keep' = 'throw'): Promise<string[]> {
    const names: string[] = [];
    for (const e of entries.filter(visible)) {
      if (e.isSymbolicLink()) {
        let target: string;
        try {
          target = await this.paths.inside(join(dir, e.name));
        } catch (error) {
          if (escaping === 'keep' && isVerdictError(error) && error.code === RegistryPathError.code) {
            names.push(e.name);
            continue;
          }
          throw error;
        }
        if (!(await stat(target).then((s) => s.isDirectory(), () => false))) continue;
      }
      names.push(e.name);
    }
    return names;
  }

  private versionExists(name: string, version: number): ConfigError {
    return new ConfigError(`${modelRef(name, version)} already exists in ${this.root}; versions are never overwritten`, {
      details: { name, version },
    });
  }

  private async modelNames(): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch (err) {
      throw new ConfigError(`cannot read model registry ${this.root}: ${(err as Error).message}`, { cause: err, details: { path: this.root } });
    }
    return (await this.directories(this.root, entries, 'keep')).sort();
  }

  /** The model's versions, ascending; undefined when the model does not exist. */
  private async versionsOf(name: string): Promise<number[] | undefined> {
    const dir = await this.paths.inside(this.paths.modelDir(name));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    const versions = (await this.directories(dir, entries.filter((e) => parseVersion(e.name) !== undefined))).map((v) => parseVersion(v));
    return versions.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  }

  /** Turns an id into a name and an existing version, without reading the version's files. */
  private async locate(id: string): Promise<{ name: string; version: number; aliases: AliasFile }> {
    const { name, selector } = parseModelId(id);
    const versions = await this.versionsOf(name);
    if (versions === undefined || versions.length === 0) {
      const known = await this.modelNames().catch(() => undefined);
      // A registry directory that does not exist (a mistyped path) says so, rather than "models: none".
      const where = known === undefined ? `the registry ${this.root}, which cannot be read (missing?)` : `the registry ${this.root} (models: ${listText(known)})`;
      throw new ModelNotFoundError(`model ${name} is not in ${where}`, { details: { id } });
    }
    const aliases = await this.aliasFile(name);
    const aliasNames = Object.keys(aliases.aliases).sort();
    let version: number;
    if (selector.kind === 'version') {
      version = selector.version;
    } else if (selector.kind === 'alias') {
      const target = aliases.aliases[selector.alias];
      if (target === undefined) {
        throw new ModelNotFoundError(`model ${name} has no alias ${selector.alias} (aliases: ${listText(aliasNames)})`, { details: { id } });
      }
      version = target;
    } else {
      version = aliases.aliases[DEFAULT_ALIAS] ?? (versions[versions.length - 1] as number);
    }
    if (!versions.includes(version)) {
      // A version asked for by number does not exist; an alias (or the default) points at one that does not.
      const what = selector.kind === 'version' ? `model ${name} has no version ${version}` : `${id} resolves to ${modelRef(name, version)}, which does not exist`;
      throw new ModelNotFoundError(`${what} (versions: ${listText(versions)})`, { details: { id } });
    }
    return { name, version, aliases };
  }

  /**
   * Reads and validates a version's manifest (it must describe the directory it sits in), and checks that
   * its model file is there, inside the registry, and within `maxModelBytes`: nothing reads the file before.
   */
  private async load(name: string, version: number): Promise<ResolvedModel> {
    await this.paths.inside(this.paths.versionDir(name, version));
    const file = await this.paths.inside(this.paths.manifestFile(name, version));
    const manifest = await readManifest(file);
    if (manifest.name !== name || manifest.version !== version) {
      throw new ConfigError(`${file}: name/version say ${modelRef(manifest.name, manifest.version)} but the file is in ${modelRef(name, version)}'s directory`, {
        details: { file },
      });
    }
    const model = this.resolved(manifest);
    await this.paths.inside(model.path);
    try {
      await checkModelFileSize(model.path, this.maxModelBytes);
    } catch (err) {
      if (isVerdictError(err)) throw err;
      throw new ModelIntegrityError(`${model.path} is missing: ${(err as Error).message}`, { cause: err, details: { path: model.path } });
    }
    return model;
  }

  private async moveAlias(name: string, file: AliasFile, alias: string, to: number, action: 'promote' | 'rollback'): Promise<AliasChange> {
    const from = file.aliases[alias] ?? null;
    const at = new Date(this.clock.now()).toISOString();
    // Re-promoting the version an alias already has changes nothing, so it leaves no history to roll back over.
    if (from === to) return { name, alias, from, to, at };
    const entry: AliasHistoryEntry = { alias, from, to, at, action };
    const next: AliasFile = { aliases: { ...file.aliases, [alias]: to }, history: [...file.history, entry] };
    // The temporary file is created with O_EXCL and renamed over aliases.json: neither follows a symlink.
    await writeFileAtomic(this.paths.aliasFile(name), toJsonText(next));
    this.log.info({ name, alias, from, to, action }, 'alias moved');
    return { name, alias, from, to, at };
  }
}
